"""The pinned command-line tools the deploy tests drive, installed by `make deploy-tools`."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ROOT / ".tools" / "bin"


def tool(name: str) -> Path:
    """The tool's path; fails (never skips) when it is missing, naming the make target."""
    path = TOOLS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make deploy-tools` (make test does)")
    return path

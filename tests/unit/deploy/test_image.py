"""The image's entrypoint script, run directly, and hadolint on deploy/Dockerfile."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.tools import ROOT, tool

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


@pytest.fixture
def recording_python(tmp_path: Path) -> Path:
    """A `python` first on PATH that records its arguments instead of running anything."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/arguments"\n', encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python


def _entrypoint(python: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "module"),
    [
        ("ingest", "services.ingest"),
        ("profile", "services.profile"),
        ("scoring", "services.scoring"),
        ("notify", "services.notify"),
        ("setup", "services.runtime.setup"),
    ],
)
def test_the_command_picks_what_runs(recording_python: Path, command: str, module: str) -> None:
    finished = _entrypoint(recording_python, command)
    assert finished.returncode == 0, finished.stderr
    arguments = (recording_python.parent / "arguments").read_text(encoding="utf-8").split()
    assert arguments == ["-m", module]
    assert module.replace(".", "/") in {
        str(path.relative_to(ROOT).with_suffix("")).removesuffix("/__main__")
        for path in ROOT.glob("services/**/*.py")
    }, f"{module} is not a module of the repository"


@pytest.mark.parametrize("arguments", [(), ("billing",), ("ingest", "--reload")])
def test_anything_else_is_refused_with_usage(
    recording_python: Path, arguments: tuple[str, ...]
) -> None:
    finished = _entrypoint(recording_python, *arguments)
    assert finished.returncode == 64
    assert "usage: retain-entrypoint" in finished.stderr
    assert not (recording_python.parent / "arguments").exists()


def test_the_entrypoint_is_executable_posix_sh() -> None:
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    assert ENTRYPOINT.read_text(encoding="utf-8").startswith("#!/bin/sh\n")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    linted = subprocess.run(
        [str(tool("hadolint")), "--failure-threshold", "info", str(ROOT / "deploy" / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr

"""A crash point kills its process only when armed, and only in local mode."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROGRAM = """
from services.runtime.crash_points import crash_point
crash_point("here")
print("alive")
"""


@pytest.mark.parametrize(
    ("env", "armed", "survives"),
    [
        ("local", "here", False),
        ("local", "elsewhere,there", True),
        ("local", "", True),
        ("production", "here", True),  # never in production, whatever the environment says
    ],
)
def test_an_armed_crash_point_kills_with_sigkill(env: str, armed: str, survives: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={"RETAIN_ENV": env, "RETAIN_CRASH_AT": armed},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if survives:
        assert (done.returncode, done.stdout) == (0, "alive\n")
    else:
        assert (done.returncode, done.stdout) == (-9, "")

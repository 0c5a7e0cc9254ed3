"""A crash point kills its process only when armed, only in local mode, and only for the
subjects it is armed for."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROGRAM = """
from services.runtime.crash_points import crash_point
crash_point("here", ["customer-1", "customer-2"])
print("alive")
"""


@pytest.mark.parametrize(
    ("env", "armed", "only_for", "survives"),
    [
        ("local", "here", "", False),
        ("local", "elsewhere,there", "", True),
        ("local", "", "", True),
        ("production", "here", "", True),  # never in production, whatever the env says
        ("local", "here", "customer-2,customer-9", False),  # the work concerns customer-2
        ("local", "here", "customer-9", True),  # other work: not this test's crash
    ],
)
def test_an_armed_crash_point_kills_with_sigkill(
    env: str, armed: str, only_for: str, survives: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={"RETAIN_ENV": env, "RETAIN_CRASH_AT": armed, "RETAIN_CRASH_FOR": only_for},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if survives:
        assert (done.returncode, done.stdout) == (0, "alive\n")
    else:
        assert (done.returncode, done.stdout) == (-9, "")

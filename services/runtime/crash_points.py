"""Crash points: named places where a crash test makes the process die, to prove what a crash
exactly there leaves behind and that a restart recovers from it.

`RETAIN_CRASH_AT=notify.sender.claimed` (comma-separated names) arms them, and only with
RETAIN_ENV=local: an armed point sends the process SIGKILL the first time it is reached, as
an operator's `kill -9` or the kernel's OOM killer would, so no cleanup code runs. Unarmed, a
crash point costs one set lookup.
"""

import os
import signal

_ARMED = (
    frozenset(name.strip() for name in os.environ.get("RETAIN_CRASH_AT", "").split(",")) - {""}
    if os.environ.get("RETAIN_ENV") == "local"
    else frozenset()
)


def crash_point(name: str) -> None:
    """Die here, at once, if this point is armed."""
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)

"""Crash points: named places where a crash test makes the process die, to prove what a crash
exactly there leaves behind and that a restart recovers from it.

`RETAIN_CRASH_AT=notify.sender.claimed` (comma-separated names) arms them, and only with
RETAIN_ENV=local: an armed point sends the process SIGKILL the first time it is reached, as
an operator's `kill -9` or the kernel's OOM killer would, so no cleanup code runs. With
`RETAIN_CRASH_FOR` (comma-separated subjects, such as customer ids) a point fires only when
the work at hand concerns one of them, so a test's crash is not set off by other work the
process finds first. Unarmed, a crash point costs one set lookup.
"""

import os
import signal
from collections.abc import Iterable


def _names(variable: str) -> frozenset[str]:
    return frozenset(name.strip() for name in os.environ.get(variable, "").split(",")) - {""}


_LOCAL = os.environ.get("RETAIN_ENV") == "local"
_ARMED = _names("RETAIN_CRASH_AT") if _LOCAL else frozenset()
_ONLY_FOR = _names("RETAIN_CRASH_FOR")


def crash_point(name: str, subjects: Iterable[str] = ()) -> None:
    """Die here, at once, if this point is armed (and, when RETAIN_CRASH_FOR names subjects,
    if the work at hand concerns one of them)."""
    if name in _ARMED and (not _ONLY_FOR or not _ONLY_FOR.isdisjoint(subjects)):
        os.kill(os.getpid(), signal.SIGKILL)

"""Progress bars for the CLI's long work (on stderr, so stdout keeps only the results)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from services.demo.ingest_client import Totals

STDERR = Console(stderr=True)


def bar(*, counted: str = "") -> Progress:
    """A bar with the count, the elapsed and remaining time, and a free `note` field."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(counted),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
        # Drawn on a terminal; elsewhere (logs, scripts) the commands' summary lines suffice.
        transient=not STDERR.is_terminal,
    )


class SendingBar:
    """Events accepted and rejected by ingest, with the rate, beside a bar of work units."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._started = time.monotonic()

    def sent(self, totals: Totals) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        note = (
            f"{totals.accepted:,} events accepted, {totals.rejected:,} rejected, "
            f"{totals.accepted / elapsed:,.0f}/s"
        )
        self._progress.update(self._task, note=note)


@contextmanager
def sending(description: str, total: int) -> Iterator[tuple[Progress, TaskID, SendingBar]]:
    with bar() as progress:
        task = progress.add_task(description, total=total, note="")
        yield progress, task, SendingBar(progress, task)

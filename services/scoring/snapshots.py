"""The daily snapshot job: every RETAIN_ANALYTICS_SNAPSHOT_SECONDS it writes today's figures
(scoring.daily_figures), so the dashboard reads precomputed rows, never every customer.

Replicas may all run it: a transaction-scoped advisory lock lets one at a time do the work,
and the rows are upserts, so a second run the same day only refreshes them.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.failures import is_transient
from services.runtime.stopping import wait_or_stop
from services.scoring.analytics_store import SnapshotPart, snapshot

log = logging.getLogger(__name__)

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('retain-scoring-daily-figures'))")


class DailySnapshots:
    def __init__(
        self,
        engine: AsyncEngine,
        parts: Sequence[SnapshotPart],
        interval_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._parts = parts
        self._interval = interval_seconds
        self._clock = clock

    async def run_once(self) -> int:
        """Write today's figures; how many rows (0 when another replica is writing them)."""
        now = self._clock()
        async with self._engine.begin() as connection:
            if not await connection.scalar(_TRY_LOCK):
                return 0
            return await snapshot(connection, self._parts, now.date(), now)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                written = await self.run_once()
                log.debug("daily figures written", extra={"rows": written})
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning("daily figures not written; retrying", exc_info=True)
            await wait_or_stop(stop, self._interval)

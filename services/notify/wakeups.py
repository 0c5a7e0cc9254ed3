"""The wake-up worker: customers whose journeys have a step due (a wait elapsed, quiet hours
over, a wait_until timed out) are claimed from `notify.customers` with FOR UPDATE SKIP LOCKED,
so any number of notify processes share the work and none moves a customer twice, and moved on
by the engine. Wake-ups live in PostgreSQL: a restart loses none, and none fires early (a
customer is claimed only once their `wake_at` has passed).
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.run_journeys import RunJourneys
from services.notify.store import PostgresNotifyStore
from services.runtime.failures import is_transient
from services.runtime.outbox import Outbox
from services.runtime.stopping import wait_or_stop

log = logging.getLogger(__name__)


class WakeUps:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        run_journeys: RunJourneys,
        *,
        relay_wakeup: asyncio.Event,
        sender_wakeup: asyncio.Event,
        batch_size: int = 500,  # as many as a consumer's batch: few statements per customer
        poll_seconds: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._run_journeys = run_journeys
        self._relay_wakeup = relay_wakeup
        self._sender_wakeup = sender_wakeup
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._clock = clock

    async def run_once(self) -> int:
        """Move on one batch of due customers; how many were claimed."""
        now = self._clock()
        async with self._engine.begin() as connection:
            store = PostgresNotifyStore(connection)
            claimed = await store.claim_due(now, self._batch_size)
            messages, added = await self._run_journeys.wake(store, claimed, now)
            await self._outbox.enqueue(connection, messages)
        if messages:
            self._relay_wakeup.set()
        if added:
            self._sender_wakeup.set()
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                claimed = await self.run_once()
                failures = 0
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                log.warning("wake-ups failed; retrying", exc_info=True)
                await wait_or_stop(stop, min(30.0, 0.5 * 2**failures))
                continue
            if claimed < self._batch_size:  # caught up: look again shortly
                await wait_or_stop(stop, self._poll)

"""The outbox relay: publishes what the fold committed, in commit order, then deletes it.

One relay publishes at a time, so messages of a key reach Kafka in the order they were
committed: each round takes a transaction-scoped advisory lock in the very transaction that
reads, publishes and deletes the rows, so the lock is held exactly while publishing and is
released by commit, rollback or a lost connection alike. A crash between publish and delete
republishes: consumers of profiles.v1 keep the highest revision and lifecycle consumers
deduplicate on event_id, so a repeat is harmless.
"""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.profile.tables import outbox
from services.runtime.stopping import wait_or_stop

log = logging.getLogger(__name__)

_LEADER_LOCK = "retain:profile:outbox-relay"
_TAKE_TURN = text("SELECT pg_try_advisory_xact_lock(hashtext(:name))")
# The published ids as one array: a fixed statement, not one parameter per id.
_DELETE = text("DELETE FROM profile.outbox WHERE id = ANY(CAST(:ids AS bigint[]))")


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        wakeup: asyncio.Event,
        *,
        batch_size: int = 1000,
        idle_poll_seconds: float = 0.25,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._wakeup = wakeup
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                published = await self.publish_once()
            except Exception as error:  # keep relaying; the outbox keeps what is unpublished
                log.warning("outbox relay failed; retrying", extra={"error": repr(error)})
                if await wait_or_stop(stop, 1.0):
                    return
                continue
            if published:
                continue
            if stop.is_set():
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._idle_poll)

    async def publish_once(self) -> int:
        """Publish the oldest outbox rows (acks=all), then delete them. Returns how many."""
        async with self._engine.begin() as connection:
            leader = await connection.scalar(_TAKE_TURN, {"name": _LEADER_LOCK})
            if not leader:  # another replica is publishing
                return 0
            rows = (
                await connection.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value)
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            pending = [
                await self._producer.send(row.topic, key=row.key, value=row.value) for row in rows
            ]
            await asyncio.gather(*pending)
            await connection.execute(_DELETE, {"ids": [row.id for row in rows]})
        return len(rows)

"""The transactional outbox: messages committed with the state change they announce, published by
a relay afterwards, so a change and its announcement never part (no dual write).

- `OutboxMessage` is the one message type; `Outbox.enqueue` adds messages in the caller's
  transaction; `Outbox.discard` drops unpublished messages by key (erasure).
- `OutboxRelay` publishes the rows in commit order (acks=all, idempotent producer), then deletes
  them. One relay per schema publishes at a time, so the messages of a key reach Kafka in the
  order they were committed: each round takes a transaction-scoped advisory lock in the very
  transaction that reads, publishes and deletes the rows, so it is released by commit, rollback
  or a lost connection alike. A crash between publish and delete republishes; consumers are
  idempotent (compacted topics keep the highest revision, event topics carry event ids).
- A message the broker can never accept (larger than it takes, an invalid topic) is parked in
  `outbox_parked` with the reason, so one bad row never holds back the rows behind it. Any other
  failure is retried with backoff; a relay failing for longer than `stalled_after_seconds` is
  stalled. Both show in /readyz details and in metrics.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.runtime.http import CheckResult
from services.runtime.messages import OutboxMessage
from services.runtime.metrics import (
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_SECONDS,
    OUTBOX_PARKED,
    OUTBOX_PUBLISH_ERRORS,
    OUTBOX_STALLED,
)
from services.runtime.stopping import wait_or_stop

__all__ = ["UNPUBLISHABLE", "Outbox", "OutboxMessage", "OutboxRelay"]

log = logging.getLogger(__name__)

# Failures that retrying can never cure for this message: park it and go on with the next.
UNPUBLISHABLE: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
)


class Outbox:
    """One service's outbox tables (in the service's own schema) and the statements on them.

    The tables are created by the service's migrations with `services.runtime.kit_schema`.
    """

    def __init__(self, schema: str) -> None:
        self.schema = schema
        table = f'"{schema}".outbox'
        parked = f'"{schema}".outbox_parked'
        # Rows are inserted in array order, so ids (the relay's publishing order) follow it.
        # One fixed text per statement, prepared once by the driver whatever the batch size.
        self._enqueue = text(
            f"INSERT INTO {table} (topic, key, value) "  # noqa: S608 (schema is a constant)
            "SELECT t, k, v FROM unnest("
            "CAST(:topics AS text[]), CAST(:keys AS bytea[]), CAST(:values AS bytea[])"
            ") WITH ORDINALITY AS o(t, k, v, n) ORDER BY n"
        )
        self._discard = text(
            f"DELETE FROM {table} WHERE key = ANY(CAST(:keys AS bytea[]))"  # noqa: S608
        )
        self.take_rows = text(
            f"SELECT id, topic, key, value FROM {table} ORDER BY id LIMIT :limit"  # noqa: S608
        )
        self.delete_rows = text(
            f"DELETE FROM {table} WHERE id = ANY(CAST(:ids AS bigint[]))"  # noqa: S608
        )
        self.park_rows = text(
            f"INSERT INTO {parked} (id, topic, key, value, created_at, reason) "  # noqa: S608
            "SELECT o.id, o.topic, o.key, o.value, o.created_at, p.reason "
            f"FROM {table} AS o JOIN unnest("
            "CAST(:ids AS bigint[]), CAST(:reasons AS text[])) AS p(id, reason) ON o.id = p.id"
        )
        self.stats = text(
            "SELECT (SELECT count(*) FROM " + table + "), "  # noqa: S608
            "(SELECT extract(epoch FROM now() - min(created_at)) FROM " + table + "), "
            "(SELECT count(*) FROM " + parked + ")"
        )
        self.leader_lock_name = f"retain:{schema}:outbox-relay"

    async def enqueue(self, connection: AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
        """Add messages to the outbox, in order, in the caller's transaction."""
        if messages:
            await connection.execute(
                self._enqueue,
                {
                    "topics": [m.topic for m in messages],
                    "keys": [m.key for m in messages],
                    "values": [m.value for m in messages],
                },
            )

    async def discard(self, connection: AsyncConnection, keys: Iterable[bytes]) -> None:
        """Drop unpublished messages with these keys (they may carry erased personal data)."""
        wanted = sorted(set(keys))
        if wanted:
            await connection.execute(self._discard, {"keys": wanted})


_TAKE_TURN = text("SELECT pg_try_advisory_xact_lock(hashtext(:name))")


@dataclass(frozen=True)
class _Round:
    published: int
    parked: int
    failure: BaseException | None


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        outbox: Outbox,
        wakeup: asyncio.Event,
        *,
        batch_size: int = 1000,
        idle_poll_seconds: float = 0.25,
        retry_initial_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        stalled_after_seconds: float = 30.0,
        stats_every_seconds: float = 1.0,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._outbox = outbox
        self._wakeup = wakeup
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._stalled_after = stalled_after_seconds
        self._stats_every = stats_every_seconds
        self._failing_since: float | None = None
        self._last_failure: BaseException | None = None
        self._parked = 0
        self._stats_at = 0.0
        schema = outbox.schema
        self._depth = OUTBOX_DEPTH.labels(schema)
        self._oldest = OUTBOX_OLDEST_SECONDS.labels(schema)
        self._parked_gauge = OUTBOX_PARKED.labels(schema)
        self._errors = OUTBOX_PUBLISH_ERRORS.labels(schema)
        self._stalled = OUTBOX_STALLED.labels(schema)

    @property
    def stalled(self) -> bool:
        return (
            self._failing_since is not None
            and time.monotonic() - self._failing_since >= self._stalled_after
        )

    async def readiness(self) -> CheckResult:
        """For /readyz: red while stalled; parked messages are reported, not fatal."""
        stalled = self.stalled
        self._stalled.set(1 if stalled else 0)
        if stalled:
            assert self._failing_since is not None
            failing = time.monotonic() - self._failing_since
            return CheckResult(False, f"stalled for {failing:.0f}s: {self._last_failure!r}")
        if self._parked:
            table = f"{self._outbox.schema}.outbox_parked"
            return CheckResult(True, f"ok; {self._parked} message(s) parked in {table}")
        return CheckResult(True, "ok")

    async def run(self, stop: asyncio.Event) -> None:
        delay = self._retry_initial
        while True:
            try:
                result = await self.publish_once()
            except Exception as error:  # the outbox keeps what is unpublished
                result = _Round(0, 0, error)
            await self._refresh_stats()
            if result.failure is not None:
                self._failed(result.failure)
                if await wait_or_stop(stop, delay):
                    return
                delay = min(delay * 2, self._retry_max)
                continue
            self._failing_since = self._last_failure = None
            self._stalled.set(0)
            delay = self._retry_initial
            if result.published or result.parked:
                continue
            if stop.is_set():
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._idle_poll)

    async def publish_once(self) -> _Round:
        """Publish the oldest rows (acks=all), park the unpublishable, delete both.

        Publishing stops at the first failure that retrying may cure; the rows before it are
        deleted, that row and the ones after it stay for the next round, in order.
        """
        outbox = self._outbox
        async with self._engine.begin() as connection:
            if not await connection.scalar(_TAKE_TURN, {"name": outbox.leader_lock_name}):
                return _Round(0, 0, None)  # another replica is publishing
            rows = (await connection.execute(outbox.take_rows, {"limit": self._batch_size})).all()
            if not rows:
                return _Round(0, 0, None)
            outcomes = await self._send_all(rows)
            done: list[int] = []
            parked: dict[int, str] = {}
            failure: BaseException | None = None
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is None:
                    done.append(row.id)
                elif isinstance(outcome, UNPUBLISHABLE):
                    parked[row.id] = f"{type(outcome).__name__}: {outcome}"
                    done.append(row.id)
                else:
                    failure = outcome
                    break
            if parked:
                await connection.execute(
                    outbox.park_rows, {"ids": list(parked), "reasons": list(parked.values())}
                )
            if done:
                await connection.execute(outbox.delete_rows, {"ids": done})
        if log.isEnabledFor(logging.DEBUG):  # RETAIN_LOG_LEVEL=DEBUG: follow an event through
            published = {row.id for row in rows} & set(done) - set(parked)
            for row in rows:
                if row.id in published:
                    key = row.key.decode("utf-8", "replace") if row.key else None
                    log.debug("published", extra={"topic": row.topic, "key": key})
        for row_id, reason in parked.items():
            log.error(
                "outbox message parked: it can never be published",
                extra={"schema": outbox.schema, "outbox_id": row_id, "reason": reason},
            )
        return _Round(len(done) - len(parked), len(parked), failure)

    async def _send_all(self, rows: Sequence[Any]) -> list[BaseException | None]:
        """Send every row; each outcome is None (acknowledged) or the error it met."""
        pending: list[asyncio.Future[Any] | BaseException] = []
        for row in rows:
            try:
                pending.append(await self._producer.send(row.topic, key=row.key, value=row.value))
            except UNPUBLISHABLE as error:
                pending.append(error)
            except Exception as error:  # e.g. no metadata for the topic yet: retry later
                pending.append(error)
                break
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        settled = iter(await asyncio.gather(*futures, return_exceptions=True))
        outcomes: list[BaseException | None] = []
        for item in pending:
            outcome = next(settled) if isinstance(item, asyncio.Future) else item
            outcomes.append(outcome if isinstance(outcome, BaseException) else None)
        # Rows not even sent (after a send failure) count as failed with that failure.
        outcomes += [outcomes[-1]] * (len(rows) - len(outcomes))
        return outcomes

    def _failed(self, error: BaseException) -> None:
        self._errors.inc()
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._last_failure = error
        self._stalled.set(1 if self.stalled else 0)
        log.warning(
            "outbox relay failed; retrying",
            extra={"schema": self._outbox.schema, "error": repr(error)},
        )

    async def _refresh_stats(self) -> None:
        now = time.monotonic()
        if now - self._stats_at < self._stats_every:
            return
        self._stats_at = now
        try:
            async with self._engine.connect() as connection:
                depth, oldest, parked = (await connection.execute(self._outbox.stats)).one()
        except Exception:  # the next round reports the database failure itself
            return
        self._parked = int(parked)
        self._depth.set(depth)
        self._oldest.set(float(oldest or 0))
        self._parked_gauge.set(parked)

"""The transactional consumer: one batch of records, one PostgreSQL transaction.

In that transaction the service's use case applies the batch and returns the messages that
announce its effects; the kit adds them and the batch's dead letters to the outbox and records
the consumer's offsets. All of it commits or none of it does, so a crash at any point means the
batch is redone from the recorded offsets, and records below them are never applied twice.

Failures are sorted (services.runtime.failures): transient ones go back to the consumer loop,
which retries with backoff; fatal ones stop the loop; anything else is poison, found by
splitting the batch in order until the failing record is alone, then dead-lettered through the
outbox with its offset, atomically: a poison record is never both skipped and lost. Records
that do not decode are poison without further ado.

A use case that fails on record after record while decoding them works is more likely broken
than fed bad data: after `max_consecutive_poison` such records in a row the kit stops
consuming (fatal) instead of dead-lettering the whole topic.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from aiokafka import TopicPartition
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.topics.dlq_v1 import DeadLetter
from services.runtime.consumer import Record
from services.runtime.failures import FatalError, is_fatal, is_transient
from services.runtime.metrics import DEAD_LETTERS
from services.runtime.outbox import Outbox, OutboxMessage

log = logging.getLogger(__name__)

T = TypeVar("T")

# Decode the record's value into what the use case takes; raises on a malformed record.
Decode = Callable[[Record], T]
# Apply decoded records in the given transaction; returns the messages announcing the effects.
Apply = Callable[[AsyncConnection, Sequence[T]], Awaitable[Sequence[OutboxMessage]]]

# Errors that say the data is malformed (not that the code is wrong).
_MALFORMED = (ValidationError, ValueError, UnicodeDecodeError)


def dead_letter(record: Record, error: BaseException, group_id: str) -> DeadLetter:
    """The *.dlq.v1 payload: where the record came from, what it held (bounded), and why."""
    return DeadLetter.of(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        error=error,
        failed_at=datetime.now(UTC),
        consumer_group=group_id,
    )


class ConsumerOffsets:
    """A consumer group's progress, kept in the service's schema beside its effects."""

    def __init__(self, schema: str, group_id: str) -> None:
        self.group_id = group_id
        table = f'"{schema}".consumer_offsets'
        self._read = text(
            f"SELECT topic, partition, next_offset FROM {table} "  # noqa: S608 (constant)
            "WHERE group_id = :group"
        )
        # Locks the batch's rows, so a consumer that lost its partitions in a rebalance and
        # still finishes a batch waits for the new owner and then sees what it recorded.
        self._lock = text(
            f"SELECT topic, partition, next_offset FROM {table} "  # noqa: S608
            "WHERE group_id = :group AND (topic, partition) IN "
            "(SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS integer[]))) "
            "ORDER BY topic, partition FOR UPDATE"
        )
        self._record = text(
            f"INSERT INTO {table} AS c (group_id, topic, partition, next_offset) "  # noqa: S608
            "SELECT :group, t, p, o FROM unnest(CAST(:topics AS text[]), "
            "CAST(:partitions AS integer[]), CAST(:offsets AS bigint[])) AS r(t, p, o) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE "
            "SET next_offset = greatest(c.next_offset, excluded.next_offset)"
        )
        self._reset = text(
            f"UPDATE {table} SET next_offset = :offset "  # noqa: S608
            "WHERE group_id = :group AND topic = :topic AND partition = :partition"
        )

    async def recorded(self, connection: AsyncConnection) -> dict[tuple[str, int], int]:
        rows = await connection.execute(self._read, {"group": self.group_id})
        return {(row.topic, row.partition): row.next_offset for row in rows}

    async def lock(
        self, connection: AsyncConnection, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The recorded offsets of these partitions, locked until the transaction ends."""
        ordered = sorted(set(partitions))
        rows = await connection.execute(
            self._lock,
            {
                "group": self.group_id,
                "topics": [t for t, _ in ordered],
                "partitions": [p for _, p in ordered],
            },
        )
        return {(row.topic, row.partition): row.next_offset for row in rows}

    async def record(self, connection: AsyncConnection, records: Sequence[Record]) -> None:
        """Record that these records are done: next offsets never move backwards."""
        latest: dict[tuple[str, int], int] = {}
        for record in records:
            position = (record.topic, record.partition)
            latest[position] = max(latest.get(position, 0), record.offset + 1)
        if latest:
            ordered = sorted(latest.items())
            await connection.execute(
                self._record,
                {
                    "group": self.group_id,
                    "topics": [t for (t, _), _ in ordered],
                    "partitions": [p for (_, p), _ in ordered],
                    "offsets": [o for _, o in ordered],
                },
            )

    async def reset(
        self, connection: AsyncConnection, topic: str, partition: int, offset: int
    ) -> None:
        """Move a partition's offset backwards (only for a topic that was recreated)."""
        await connection.execute(
            self._reset,
            {"group": self.group_id, "topic": topic, "partition": partition, "offset": offset},
        )


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    """A record of the batch, decoded, or with the reason it could not be."""

    record: Record
    item: T | None
    error: BaseException | None


class TransactionalConsumer(Generic[T]):
    """The batch handler of a consumer whose effects live in PostgreSQL (see module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        *,
        group_id: str,
        dead_letter_topic: str,
        decode: Decode[T],
        apply: Apply[T],
        relay_wakeup: asyncio.Event | None = None,
        max_consecutive_poison: int = 50,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self.offsets = ConsumerOffsets(outbox.schema, group_id)
        self._group_id = group_id
        self._dead_letter_topic = dead_letter_topic
        self._decode = decode
        self._apply = apply
        self._relay_wakeup = relay_wakeup
        self._max_consecutive_poison = max_consecutive_poison
        self._poison_streak = 0

    async def __call__(self, batch: Sequence[Record]) -> None:
        entries: list[_Entry[T]] = []
        for record in batch:
            try:
                entries.append(_Entry(record, self._decode(record), None))
            except Exception as error:
                if not isinstance(error, _MALFORMED):
                    self._count_unexplained_poison(error)
                entries.append(_Entry(record, None, error))
        await self._apply_isolating(entries)

    async def stored_positions(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Where to resume: the offsets recorded with the effects, not Kafka's commit."""
        async with self._engine.connect() as connection:
            recorded = await self.offsets.recorded(connection)
        return {
            tp: recorded[(tp.topic, tp.partition)]
            for tp in assigned
            if (tp.topic, tp.partition) in recorded
        }

    async def reset_position(self, partition: TopicPartition, offset: int) -> None:
        async with self._engine.begin() as connection:
            await self.offsets.reset(connection, partition.topic, partition.partition, offset)

    async def _apply_isolating(self, entries: list[_Entry[T]]) -> None:
        try:
            await self._transaction(entries)
            return
        except Exception as error:
            if is_transient(error) or is_fatal(error):
                raise
            decoded = [entry for entry in entries if entry.error is None]
            if not decoded:
                # Only dead letters, and writing them failed: the kit itself cannot go on.
                raise FatalError(f"cannot write dead letters: {error!r}") from error
            if len(decoded) == 1:
                self._count_unexplained_poison(error)
                poisoned = [
                    _Entry(e.record, None, error) if e.error is None else e for e in entries
                ]
                await self._transaction(poisoned)
                return
        # Split in batch order: within a partition the first half holds the lower offsets, so
        # recording the first half's offsets never skips a record of the second.
        half = len(entries) // 2
        await self._apply_isolating(entries[:half])
        await self._apply_isolating(entries[half:])

    async def _transaction(self, entries: Sequence[_Entry[T]]) -> None:
        records = [entry.record for entry in entries]
        async with self._engine.begin() as connection:
            recorded = await self.offsets.lock(
                connection, [(r.topic, r.partition) for r in records]
            )
            # Records below the recorded offsets were applied before a crash or a rebalance.
            fresh = [
                e
                for e in entries
                if e.record.offset >= recorded.get((e.record.topic, e.record.partition), 0)
            ]
            letters = [
                (e.record, dead_letter(e.record, e.error, self._group_id))
                for e in fresh
                if e.error is not None
            ]
            items = [e.item for e in fresh if e.error is None and e.item is not None]
            messages = [
                OutboxMessage(
                    self._dead_letter_topic, record.key, letter.model_dump_json().encode()
                )
                for record, letter in letters
            ]
            if items:
                messages += await self._apply(connection, items)
            await self._outbox.enqueue(connection, messages)
            await self.offsets.record(connection, records)
        if items:
            self._poison_streak = 0
        if log.isEnabledFor(logging.DEBUG):  # RETAIN_LOG_LEVEL=DEBUG: follow an event through
            for entry in fresh:
                if entry.error is None:
                    log.debug("record applied", extra=self._about(entry))
        for record, letter in letters:
            DEAD_LETTERS.labels(self._group_id, record.topic).inc()
            log.warning(
                "record dead-lettered",
                extra={
                    "group": self._group_id,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.key.decode("utf-8", "replace") if record.key else None,
                    "dead_letter_topic": self._dead_letter_topic,
                    "error_type": letter.error_type,
                    "error": letter.error,
                },
            )
        if messages and self._relay_wakeup is not None:
            self._relay_wakeup.set()

    def _about(self, entry: _Entry[T]) -> dict[str, object]:
        record = entry.record
        return {
            "group": self._group_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            "event_id": event_id_of(entry.item),
        }

    def _count_unexplained_poison(self, error: BaseException) -> None:
        self._poison_streak += 1
        if self._poison_streak >= self._max_consecutive_poison:
            raise FatalError(
                f"{self._poison_streak} records in a row failed although they decoded; "
                f"the code is more likely wrong than the data (last error: {error!r})"
            ) from error


def event_id_of(item: object) -> str | None:
    """The id a record's event carries (a touchpoint's messageId, a lifecycle event's id)."""
    for name in ("event_id", "message_id"):
        value = getattr(item, name, None)
        if isinstance(value, str):
            return value
    return None

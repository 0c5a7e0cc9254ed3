"""The consumer loop every Retain service uses.

Guarantees (DESIGN.md rule 3):
- Offsets are committed manually, only after the handler returned, i.e. after its effects are
  durable. A crash before the commit means redelivery; handlers are idempotent, so redelivery
  changes nothing.
- Rebalance-safe: a revocation waits for the batch in flight to finish and commit, and records
  of partitions lost meanwhile are not processed.
- Bounded batches (`max_records`), so memory and transaction size stay bounded.
- Poison messages go to a dead-letter topic with their error and the loop moves on; transient
  failures (database or broker unreachable) are retried with backoff instead, never dead-lettered.
- Graceful stop: `stop` is checked between batches; the batch in flight completes and commits.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError

from schemas.topics.dlq_v1 import DeadLetter
from services.runtime.failures import is_transient
from services.runtime.metrics import (
    CONSUMED_RECORDS,
    CONSUMER_BATCH_SECONDS,
    DEAD_LETTERS,
    HANDLER_RETRIES,
)
from services.runtime.settings import ServiceSettings
from services.runtime.stopping import wait_or_stop

log = logging.getLogger(__name__)


class Record(Protocol):
    """What handlers see of a Kafka record; aiokafka's ConsumerRecord satisfies it."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Poison:
    """A record the handler can never process (bad JSON, contract violation, ...), and why."""

    record: Record
    error: Exception


# Processes a batch (in partition order) and returns the records it rejected as poison. It must
# return only once its effects are durable and must be idempotent under redelivery.
BatchHandler = Callable[[Sequence[Record]], Awaitable[Sequence[Poison]]]

# For handlers that record their progress in their own store, in the same transaction as their
# effects: given newly assigned partitions, the offsets to resume from.
StoredPositions = Callable[[set[TopicPartition]], Awaitable[dict[TopicPartition, int]]]


def dead_letter(record: Record, error: Exception, group_id: str) -> DeadLetter:
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


def dead_letter_value(record: Record, error: Exception, group_id: str) -> bytes:
    return dead_letter(record, error, group_id).model_dump_json().encode()


@dataclass(frozen=True)
class ConsumerConfig:
    group_id: str
    topics: tuple[str, ...]
    dead_letter_topic: str
    max_records: int = 500
    max_wait_ms: int = 200
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 10.0


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds revocation until the batch in flight has been processed and committed."""

    def __init__(
        self,
        in_flight: asyncio.Lock,
        group_id: str,
        consumer: AIOKafkaConsumer,
        positions: StoredPositions | None,
    ) -> None:
        self._in_flight = in_flight
        self._group_id = group_id
        self._consumer = consumer
        self._positions = positions

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._in_flight:
            log.info("partitions revoked", extra={"group": self._group_id, "count": len(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"group": self._group_id, "count": len(assigned)})
        if self._positions is not None and assigned:
            # The handler's own record of progress is the truth; Kafka's commit may lag it.
            for partition, offset in (await self._positions(assigned)).items():
                self._consumer.seek(partition, offset)


class ConsumerLoop:
    def __init__(
        self,
        settings: ServiceSettings,
        config: ConsumerConfig,
        handler: BatchHandler,
        dead_letter_producer: AIOKafkaProducer,
        positions: StoredPositions | None = None,
    ) -> None:
        self._positions = positions
        self._settings = settings
        self._config = config
        self._handler = handler
        self._dlq = dead_letter_producer
        self._in_flight = asyncio.Lock()
        self._consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=config.group_id,
            client_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Producers may write in transactions; never act on aborted data.
            isolation_level="read_committed",
            max_poll_interval_ms=300_000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer.subscribe(
            list(self._config.topics),
            listener=_CommitOnRevoke(
                self._in_flight, self._config.group_id, self._consumer, self._positions
            ),
        )
        await self._consumer.start()
        log.info("consumer started", extra={"group": self._config.group_id})
        try:
            while not stop.is_set():
                fetched = await self._consumer.getmany(
                    timeout_ms=self._config.max_wait_ms, max_records=self._config.max_records
                )
                if fetched:
                    async with self._in_flight:
                        await self._process_and_commit(fetched, stop)
        finally:
            await self._consumer.stop()
            log.info("consumer stopped", extra={"group": self._config.group_id})

    async def _process_and_commit(
        self, fetched: dict[TopicPartition, list[Record]], stop: asyncio.Event
    ) -> None:
        started = time.perf_counter()
        # A rebalance may have taken partitions between the fetch and now: leave those records to
        # their new owner instead of processing them twice.
        owned = self._consumer.assignment()
        batch = [record for tp, records in fetched.items() if tp in owned for record in records]
        if not batch:
            return
        poison = await self._handle_until_done(batch, stop)
        if poison is None:  # stopping with the batch unfinished: no commit, it is redelivered
            return
        for item in poison:
            await self._dead_letter(item)
        offsets = {
            tp: records[-1].offset + 1 for tp, records in fetched.items() if tp in owned and records
        }
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced under us; the new owner re-reads from the last commit and the
            # idempotent handler makes the repeat harmless.
            log.warning("commit failed after rebalance", extra={"group": self._config.group_id})
            return
        # Counted per topic, not per record: a label lookup per record shows up at volume.
        per_topic: dict[str, int] = {}
        for record in batch:
            per_topic[record.topic] = per_topic.get(record.topic, 0) + 1
        for topic, count in per_topic.items():
            CONSUMED_RECORDS.labels(self._config.group_id, topic).inc(count)
        CONSUMER_BATCH_SECONDS.labels(self._config.group_id).observe(time.perf_counter() - started)

    async def _handle_until_done(
        self, batch: Sequence[Record], stop: asyncio.Event
    ) -> list[Poison] | None:
        """Run the handler, retrying transient failures and isolating the record that fails."""
        delay = self._config.retry_initial_seconds
        while True:
            try:
                return list(await self._handler(batch))
            except Exception as error:
                if is_transient(error):
                    HANDLER_RETRIES.labels(self._config.group_id).inc()
                    log.warning(
                        "transient failure, retrying batch",
                        extra={"group": self._config.group_id, "error": repr(error)},
                    )
                    if await wait_or_stop(stop, delay):
                        return None
                    delay = min(delay * 2, self._config.retry_max_seconds)
                    continue
                if len(batch) == 1:
                    return [Poison(batch[0], error)]
                # Something in the batch is poison: process records one by one to find it.
                poison: list[Poison] = []
                for record in batch:
                    found = await self._handle_until_done([record], stop)
                    if found is None:
                        return None
                    poison.extend(found)
                return poison

    async def _dead_letter(self, item: Poison) -> None:
        record = item.record
        await self._dlq.send_and_wait(
            self._config.dead_letter_topic,
            key=record.key,
            value=dead_letter_value(record, item.error, self._config.group_id),
        )
        DEAD_LETTERS.labels(self._config.group_id, record.topic).inc()
        log.warning(
            "record dead-lettered",
            extra={
                "group": self._config.group_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": repr(item.error),
            },
        )

"""The consumer loop every Retain service uses: Kafka on one side, a batch handler on the other.

Guarantees (docs/architecture.md, rule 3), with the handler from `services.runtime.transactional`
(which records offsets with the effects and dead-letters poison through the outbox):
- Partitions resume from the offsets the handler recorded with its effects (a seek on
  assignment). A partition whose log now ends below that offset was deleted and recreated: this
  is logged as an error, counted, and the partition is read from its new beginning, never
  silently skipped.
- Offsets are also committed to Kafka (for lag monitoring and autoscaling), at most once per
  `kafka_commit_interval_seconds` and when the loop stops, off the batch's critical path;
  Kafka's commit never runs ahead of the handler's.
- Rebalance-safe: a revocation waits for the batch in flight, and records of partitions lost
  meanwhile are not processed.
- Bounded batches (`max_records`), so memory and transaction size stay bounded.
- Transient failures (database or broker unreachable) are retried with backoff. A fatal failure
  (the code or the schema is wrong) stops consumption: the loop leaves its group, /readyz turns
  red with the reason, and the process stays up for an operator to look at.
- Graceful stop: `stop` is checked between batches; the batch in flight completes and commits.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from services.runtime.failures import describe, is_transient
from services.runtime.http import CheckResult
from services.runtime.metrics import (
    CONSUMED_RECORDS,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_LAG,
    CONSUMER_STOPPED,
    HANDLER_RETRIES,
    OFFSET_RESETS,
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


# Processes a batch (in partition order). It returns only once its effects and its progress are
# durable, and must be idempotent under redelivery.
BatchHandler = Callable[[Sequence[Record]], Awaitable[None]]


class StoredPositions(Protocol):
    """The handler's own record of progress (the transactional consumer is one)."""

    async def stored_positions(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        """For newly assigned partitions, the offsets to resume from."""
        ...

    async def reset_position(self, partition: TopicPartition, offset: int) -> None:
        """Move a partition's recorded offset back (its topic was recreated)."""
        ...


@dataclass(frozen=True)
class ConsumerConfig:
    group_id: str
    topics: tuple[str, ...]
    dead_letter_topic: str
    max_records: int = 500
    max_wait_ms: int = 200
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 10.0
    kafka_commit_interval_seconds: float = 1.0


class _SeekOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds revocation until the batch in flight is done; resumes from the stored positions."""

    def __init__(
        self,
        in_flight: asyncio.Lock,
        group_id: str,
        consumer: AIOKafkaConsumer,
        positions: StoredPositions,
        resumed: Callable[[dict[TopicPartition, int]], None],
    ) -> None:
        self._in_flight = in_flight
        self._group_id = group_id
        self._consumer = consumer
        self._positions = positions
        self._resumed = resumed

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._in_flight:
            log.info("partitions revoked", extra={"group": self._group_id, "count": len(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"group": self._group_id, "count": len(assigned)})
        if not assigned:
            return
        try:
            await self._seek_to_stored(assigned)
        except Exception as error:
            # aiokafka swallows errors raised here; say so. Kafka's commit, where the consumer
            # then starts, never runs ahead of the stored positions, and records below those
            # are skipped by the handler, so nothing is applied twice.
            log.warning(
                "stored positions unavailable; resuming from Kafka's commit",
                extra={"group": self._group_id, "error": repr(error)},
            )

    async def _seek_to_stored(self, assigned: set[TopicPartition]) -> None:
        stored = await self._positions.stored_positions(assigned)
        if not stored:
            return
        ends = await self._consumer.end_offsets(list(stored))
        resumed: dict[TopicPartition, int] = {}
        for partition, offset in stored.items():
            end = ends.get(partition, offset)
            if offset > end:
                start = (await self._consumer.beginning_offsets([partition]))[partition]
                OFFSET_RESETS.labels(self._group_id, partition.topic).inc()
                log.error(
                    "partition log ends below the recorded offset: the topic was deleted and "
                    "recreated (or lost data); reading it again from its beginning",
                    extra={
                        "group": self._group_id,
                        "topic": partition.topic,
                        "partition": partition.partition,
                        "recorded_offset": offset,
                        "log_end_offset": end,
                        "resume_offset": start,
                    },
                )
                await self._positions.reset_position(partition, start)
                offset = start
            self._consumer.seek(partition, offset)
            resumed[partition] = offset
        self._resumed(resumed)


class ConsumerLoop:
    def __init__(
        self,
        settings: ServiceSettings,
        config: ConsumerConfig,
        handler: BatchHandler,
        positions: StoredPositions,
    ) -> None:
        self._config = config
        self._handler = handler
        self._positions = positions
        self._in_flight = asyncio.Lock()
        self._fatal: BaseException | None = None
        # Done but not yet committed to Kafka; the stored offsets are the truth meanwhile.
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0
        # Where each partition's next batch starts, for the lag metric.
        self._next_offsets: dict[TopicPartition, int] = {}
        self._consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=config.group_id,
            # Which process holds a partition, as `retain topics describe` shows it.
            client_id=f"{config.group_id}-{socket.gethostname()}-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Producers may write in transactions; never act on aborted data.
            isolation_level="read_committed",
            max_poll_interval_ms=300_000,
        )
        CONSUMER_STOPPED.labels(config.group_id).set(0)

    async def readiness(self) -> CheckResult:
        if self._fatal is not None:
            return CheckResult(False, f"stopped on a fatal error: {describe(self._fatal)}")
        return CheckResult(True, "ok")

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer.subscribe(
            list(self._config.topics),
            listener=_SeekOnAssign(
                self._in_flight,
                self._config.group_id,
                self._consumer,
                self._positions,
                self._resume_from,
            ),
        )
        await self._consumer.start()
        log.info("consumer started", extra={"group": self._config.group_id})
        try:
            while not stop.is_set() and self._fatal is None:
                fetched = await self._consumer.getmany(
                    timeout_ms=self._config.max_wait_ms, max_records=self._config.max_records
                )
                if fetched:
                    async with self._in_flight:
                        await self._process_and_commit(fetched, stop)
                elif self._uncommitted and self._commit_due():
                    # Idle: the last batch's offsets (or the positions resumed from) go to
                    # Kafka too, or a quiet group would show lag it does not have until its
                    # next record.
                    await self._commit_to_kafka()
                    self._report_lag(self._consumer.assignment())
        finally:
            await self._commit_to_kafka()
            await self._consumer.stop()
            log.info("consumer stopped", extra={"group": self._config.group_id})
        if self._fatal is not None:
            # Stay up, not ready, so the reason is visible in /readyz and the logs; a restart
            # would only fail again on the same record.
            await stop.wait()

    async def _process_and_commit(
        self, fetched: dict[TopicPartition, list[Record]], stop: asyncio.Event
    ) -> None:
        started = time.perf_counter()
        # A rebalance may have taken partitions between the fetch and now: leave those records to
        # their new owner instead of processing them twice.
        owned = self._consumer.assignment()
        batch = [record for tp, records in fetched.items() if tp in owned for record in records]
        if not batch or not await self._handle_until_done(batch, stop):
            return  # nothing owned, stopping with the batch unfinished, or a fatal error
        done = {
            tp: records[-1].offset + 1 for tp, records in fetched.items() if tp in owned and records
        }
        self._uncommitted.update(done)
        self._next_offsets.update(done)
        if self._commit_due():
            await self._commit_to_kafka()
        # Counted per topic, not per record: a label lookup per record shows up at volume.
        per_topic: dict[str, int] = {}
        for record in batch:
            per_topic[record.topic] = per_topic.get(record.topic, 0) + 1
        for topic, count in per_topic.items():
            CONSUMED_RECORDS.labels(self._config.group_id, topic).inc(count)
        self._report_lag(owned)
        CONSUMER_BATCH_SECONDS.labels(self._config.group_id).observe(time.perf_counter() - started)

    def _report_lag(self, owned: set[TopicPartition]) -> None:
        """Records behind the log end, per topic, over the partitions this process owns. Each
        fetch brings the partitions' ends, so this costs no request; the lag of a whole group
        is the sum over its processes."""
        behind = dict.fromkeys(self._config.topics, 0)
        for partition in owned:
            end = self._consumer.highwater(partition)
            position = self._next_offsets.get(partition)
            if end is not None and position is not None:
                behind[partition.topic] = behind.get(partition.topic, 0) + max(end - position, 0)
        for topic, records in behind.items():
            CONSUMER_LAG.labels(self._config.group_id, topic).set(records)

    def _resume_from(self, positions: dict[TopicPartition, int]) -> None:
        """Partitions just assigned resume from their stored positions. Those go to Kafka as
        well: a process that did the work and died (or stopped while the group rebalanced)
        may not have committed it there, and a partition with nothing new would show that
        lag until its next record."""
        self._uncommitted.update(positions)
        self._next_offsets.update(positions)

    def _commit_due(self) -> bool:
        return time.monotonic() - self._committed_at >= self._config.kafka_commit_interval_seconds

    async def _commit_to_kafka(self) -> None:
        owned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in owned}
        self._uncommitted.clear()
        self._committed_at = time.monotonic()
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced under us; the new owner resumes from the stored positions.
            log.warning("commit failed after rebalance", extra={"group": self._config.group_id})
        except KafkaError as error:  # best effort: the stored offsets are what counts
            log.warning(
                "commit to Kafka failed",
                extra={"group": self._config.group_id, "error": repr(error)},
            )

    async def _handle_until_done(self, batch: Sequence[Record], stop: asyncio.Event) -> bool:
        """Run the handler, retrying transient failures; False if it did not complete."""
        delay = self._config.retry_initial_seconds
        while True:
            try:
                await self._handler(batch)
                return True
            except Exception as error:
                if not is_transient(error):
                    self._stop_on(error)
                    return False
                HANDLER_RETRIES.labels(self._config.group_id).inc()
                log.warning(
                    "transient failure, retrying batch",
                    extra={"group": self._config.group_id, "error": repr(error)},
                )
                if await wait_or_stop(stop, delay):
                    return False
                delay = min(delay * 2, self._config.retry_max_seconds)

    def _stop_on(self, error: BaseException) -> None:
        self._fatal = error
        CONSUMER_STOPPED.labels(self._config.group_id).set(1)
        log.critical(
            "consumer stopped on a fatal error; fix the code or the schema, then restart",
            exc_info=error,
            extra={"group": self._config.group_id, "error": describe(error)},
        )

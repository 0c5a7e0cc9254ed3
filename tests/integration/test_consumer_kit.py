"""The transactional consumer kit against the real broker and PostgreSQL: offsets stored with the
effects, the three kinds of failure, dead letters through the outbox, a recreated topic, and
the relay parking what can never be published."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from schemas.topics import TopicSpec
from services.runtime.consumer import ConsumerConfig, ConsumerLoop, Record
from services.runtime.kafka import create_producer, ensure_topics
from services.runtime.kit_schema import kit_tables
from services.runtime.messages import OutboxMessage
from services.runtime.outbox import Outbox, OutboxRelay
from services.runtime.settings import ServiceSettings
from services.runtime.transactional import TransactionalConsumer
from tests.integration.helpers import read_messages

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(settings: ServiceSettings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    yield engine
    await engine.dispose()


@dataclass
class Kit:
    """A consumer of a fresh topic whose use case stores each record's value in a table."""

    settings: ServiceSettings
    engine: AsyncEngine
    producer: AIOKafkaProducer
    topic: str
    dlq: str
    schema: str
    applied: list[str] = field(default_factory=list)
    transient_failures_left: int = 0

    @property
    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            group_id=f"group-{self.topic}",
            topics=(self.topic,),
            dead_letter_topic=self.dlq,
            retry_initial_seconds=0.05,
        )

    @property
    def outbox(self) -> Outbox:
        return Outbox(self.schema)

    def decode(self, record: Record) -> str:
        value = (record.value or b"").decode()
        if value.startswith("poison"):
            raise ValueError("not a valid event")
        return value

    async def apply(
        self, connection: AsyncConnection, values: Sequence[str]
    ) -> list[OutboxMessage]:
        if self.transient_failures_left:
            self.transient_failures_left -= 1
            raise ConnectionRefusedError("database restarting")
        if "explodes" in values:
            raise ValueError("cannot fold this record")
        await connection.execute(
            text(f'INSERT INTO "{self.schema}".items (value) SELECT unnest(CAST(:v AS text[]))'),
            {"v": list(values)},
        )
        self.applied += values
        return [OutboxMessage(f"{self.topic}.out", v.encode(), v.encode()) for v in values]

    def loop(self) -> tuple[ConsumerLoop, TransactionalConsumer[str]]:
        handler = TransactionalConsumer(
            self.engine,
            self.outbox,
            group_id=self.config.group_id,
            dead_letter_topic=self.dlq,
            decode=self.decode,
            apply=self.apply,
            max_consecutive_poison=5,
        )
        return ConsumerLoop(self.settings, self.config, handler, handler), handler

    async def run_until(self, count: int) -> ConsumerLoop:
        """Run a consumer until `count` records are stored (applied or dead-lettered)."""
        loop, _ = self.loop()
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        try:
            await until(lambda: self._stored_at_least(count), seconds=60)
        finally:
            stop.set()
            await task
        return loop

    async def _stored_at_least(self, count: int) -> bool:
        return await self.stored() >= count

    async def stored(self) -> int:
        """Records whose effects committed: rows in the table plus dead letters in the outbox."""
        async with self.engine.connect() as connection:
            items = await connection.scalar(text(f'SELECT count(*) FROM "{self.schema}".items'))  # noqa: S608
            letters = await connection.scalar(
                text(f'SELECT count(*) FROM "{self.schema}".outbox WHERE topic = :t'),  # noqa: S608
                {"t": self.dlq},
            )
        return int(items or 0) + int(letters or 0)

    async def produce(self, values: Sequence[bytes], *, key: bytes | None = None) -> None:
        for i, value in enumerate(values):
            await self.producer.send_and_wait(
                self.topic, key=key or f"k{i % 5}".encode(), value=value
            )

    async def committed_to_kafka(self) -> int:
        """The offsets the group has committed to Kafka (what lag monitoring reads), summed."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.config.group_id)
        finally:
            await admin.close()
        return sum(o.offset for o in offsets.values() if o.offset > 0)

    async def relay_once(self) -> None:
        relay = OutboxRelay(self.engine, self.producer, self.outbox, asyncio.Event())
        while (await relay.publish_once()).published:
            pass


@pytest.fixture
async def kit(settings: ServiceSettings, engine: AsyncEngine) -> AsyncIterator[Kit]:
    topic = f"test-{uuid.uuid4().hex[:8]}"
    await ensure_topics(
        settings,
        [
            TopicSpec(topic, 3, "delete", None, "test key", "source"),
            TopicSpec(f"{topic}.dlq", 1, "delete", None, "test key", "dead letters"),
            TopicSpec(f"{topic}.out", 1, "delete", None, "test key", "effects announced"),
        ],
    )
    schema = f"kit_{uuid.uuid4().hex[:8]}"
    metadata = MetaData(schema=schema)
    kit_tables(metadata)
    Table("items", metadata, Column("value", String, primary_key=True))
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.run_sync(metadata.create_all)
    producer = create_producer(settings, "test")
    await producer.start()
    try:
        yield Kit(settings, engine, producer, topic, f"{topic}.dlq", schema)
    finally:
        await producer.stop()


async def until(check: Callable[[], Awaitable[bool]], *, seconds: float) -> None:
    """Poll `check` until it is true; fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _parked_reported(relay: OutboxRelay) -> bool:
    return "parked" in (await relay.readiness()).detail


async def _not_ready(part: ConsumerLoop | OutboxRelay) -> bool:
    return not (await part.readiness()).ok


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_offsets_stored_with_the_effects_survive_a_consumer_restart(kit: Kit) -> None:
    first = [f"first-{i}".encode() for i in range(30)]
    await kit.produce(first)
    await kit.run_until(30)
    assert sorted(kit.applied) == sorted(v.decode() for v in first)

    # A new consumer in the same group resumes from the stored offsets: it sees only what was
    # produced since, nothing twice.
    kit.applied.clear()
    second = [f"second-{i}".encode() for i in range(10)]
    await kit.produce(second)
    await kit.run_until(40)
    assert sorted(kit.applied) == sorted(v.decode() for v in second)


async def test_a_consumer_gone_quiet_commits_its_last_offsets_to_kafka_while_running(
    kit: Kit,
) -> None:
    """Kafka's committed offsets are what lag monitoring reads: a group that has done all its
    work must show no lag there while it runs, not only after its next record or its stop."""
    loop, _ = kit.loop()
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        # The second part arrives within the commit interval of the first part's commit, so
        # its offsets are left for the commit after it; then nothing more arrives.
        await kit.produce([f"quiet-{i}".encode() for i in range(6)])
        await until(lambda: kit._stored_at_least(6), seconds=60)
        await kit.produce([f"quiet-{i}".encode() for i in range(6, 12)])
        await until(lambda: kit._stored_at_least(12), seconds=60)
        await until(lambda: _equals(kit.committed_to_kafka(), 12), seconds=30)
        assert not task.done()  # still running: the commit did not wait for the stop
    finally:
        stop.set()
        await task


async def test_a_new_owner_commits_the_stored_positions_the_last_owner_left_uncommitted(
    kit: Kit,
) -> None:
    """The process that did the work died before committing it to Kafka (its commit is at
    the start again, as after a SIGKILL before the first commit): the next owner resumes from
    the stored positions and, with nothing new to read, still commits them to Kafka."""
    await kit.produce([f"owned-{i}".encode() for i in range(9)])
    await kit.run_until(9)
    partitions = [TopicPartition(kit.topic, p) for p in range(3)]
    committer = AIOKafkaConsumer(
        bootstrap_servers=kit.settings.kafka_bootstrap_servers,
        group_id=kit.config.group_id,
        enable_auto_commit=False,
    )
    await committer.start()
    try:
        committer.assign(partitions)
        await committer.commit(dict.fromkeys(partitions, 0))
    finally:
        await committer.stop()

    loop, _ = kit.loop()
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await until(lambda: _equals(kit.committed_to_kafka(), 9), seconds=30)
        assert len(kit.applied) == 9  # nothing applied again
    finally:
        stop.set()
        await task


async def test_poison_is_dead_lettered_through_the_outbox_and_the_loop_moves_on(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    counted = _metric("retain_dead_letters_total", group=kit.config.group_id, topic=kit.topic)
    await kit.produce([b"good-1", b"poison-1", b"good-2"])
    with caplog.at_level(logging.WARNING, logger="services.runtime.transactional"):
        await kit.run_until(3)
    assert sorted(kit.applied) == ["good-1", "good-2"]
    await kit.relay_once()
    [message] = await read_messages(kit.settings, kit.dlq, lambda m: True, 1)
    letter = orjson.loads(message.value or b"")
    assert letter["original_topic"] == kit.topic
    assert letter["value"] == "poison-1"
    assert letter["error"] == "not a valid event"
    assert letter["consumer_group"] == kit.config.group_id
    # A dead letter leaves a trace: counted, and logged with its reason.
    assert (
        _metric("retain_dead_letters_total", group=kit.config.group_id, topic=kit.topic)
        == counted + 1
    )
    assert any(
        r.getMessage() == "record dead-lettered" and getattr(r, "error", "") == "not a valid event"
        for r in caplog.records
    )


async def test_with_debug_logs_every_applied_record_is_logged_with_its_place_and_key(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    await kit.produce([b"traced-1", b"traced-2"], key=b"customer-7")
    with caplog.at_level(logging.DEBUG, logger="services.runtime.transactional"):
        await kit.run_until(2)
    applied = [r for r in caplog.records if r.getMessage() == "record applied"]
    assert [(r.topic, r.key, r.group) for r in applied] == [  # type: ignore[attr-defined]
        (kit.topic, "customer-7", kit.config.group_id)
    ] * 2
    assert sorted(r.offset for r in applied) == [0, 1]  # type: ignore[attr-defined]


async def test_transient_errors_are_retried_and_a_failing_record_is_isolated(kit: Kit) -> None:
    kit.transient_failures_left = 2
    # One key, one partition: the four records come in one batch, so isolation splits it.
    await kit.produce([b"a", b"b", b"explodes", b"c"], key=b"same")
    await kit.run_until(4)
    assert sorted(kit.applied) == ["a", "b", "c"]
    assert kit.transient_failures_left == 0
    await kit.relay_once()
    [message] = await read_messages(kit.settings, kit.dlq, lambda m: True, 1)
    letter = orjson.loads(message.value or b"")
    assert letter["value"] == "explodes"
    assert (letter["error_type"], letter["error"]) == ("ValueError", "cannot fold this record")


async def test_a_fatal_error_stops_consuming_and_turns_readiness_red_dead_lettering_nothing(
    kit: Kit,
) -> None:
    await kit.produce([b"one", b"two", b"three"], key=b"same")
    await kit.run_until(3)
    # The schema is wrong now (a migration missing, say): every record would fail alike.
    async with kit.engine.begin() as connection:
        await connection.execute(text(f'DROP TABLE "{kit.schema}".items'))
    await kit.produce([b"four", b"five"], key=b"same")
    loop, _ = kit.loop()
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await until(lambda: _not_ready(loop), seconds=30)
        status = await loop.readiness()
        assert "fatal" in status.detail
        assert "does not exist" in status.detail
        assert "SQLSTATE 42P01" in status.detail  # undefined table
        assert not task.done()  # the process stays up, not ready, for an operator to see
        assert _metric("retain_consumer_stopped", group=kit.config.group_id) == 1
    finally:
        stop.set()
        await task
    async with kit.engine.connect() as connection:
        letters = await connection.scalar(
            text(f'SELECT count(*) FROM "{kit.schema}".outbox WHERE topic = :t'),  # noqa: S608
            {"t": kit.dlq},
        )
        [next_offset] = (
            await connection.execute(
                text(f'SELECT next_offset FROM "{kit.schema}".consumer_offsets')  # noqa: S608
            )
        ).scalars()
    assert letters == 0
    assert next_offset == 3  # four and five were neither applied nor skipped


async def test_a_use_case_failing_on_every_record_is_stopped_not_dead_lettering_the_topic(
    kit: Kit,
) -> None:
    await kit.produce([b"explodes"] * 12, key=b"same")
    loop, _ = kit.loop()
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await until(lambda: _not_ready(loop), seconds=30)
        assert "more likely wrong than the data" in (await loop.readiness()).detail
    finally:
        stop.set()
        await task
    assert 0 < await kit.stored() < 5  # a few dead letters, then a stop: not the whole topic


async def test_a_recreated_topic_is_detected_and_read_from_its_beginning(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    # Offsets recorded far beyond the log's end: what a consumer sees after the topic was deleted
    # and created again. Skipping to offset 1000 would silently lose the new records.
    async with kit.engine.begin() as connection:
        await connection.execute(
            text(
                f'INSERT INTO "{kit.schema}".consumer_offsets '  # noqa: S608
                "(group_id, topic, partition, next_offset) VALUES (:g, :t, 0, 1000)"
            ),
            {"g": kit.config.group_id, "t": kit.topic},
        )
    values = [f"new-{i}".encode() for i in range(12)]
    await kit.produce(values)
    with caplog.at_level(logging.ERROR, logger="services.runtime.consumer"):
        await kit.run_until(12)
    assert sorted(kit.applied) == sorted(v.decode() for v in values)
    assert any("recreated" in r.getMessage() for r in caplog.records)
    assert (
        _metric("retain_consumer_offset_resets_total", group=kit.config.group_id, topic=kit.topic)
        == 1
    )


async def test_the_relay_parks_an_unpublishable_message_and_publishes_the_rows_behind_it(
    kit: Kit,
) -> None:
    huge = b"x" * 2_000_000  # above the producer's and the broker's message size limit
    async with kit.engine.begin() as connection:
        await kit.outbox.enqueue(
            connection,
            [
                OutboxMessage(f"{kit.topic}.out", b"k", b"before"),
                OutboxMessage(f"{kit.topic}.out", b"k", huge),
                OutboxMessage(f"{kit.topic}.out", b"k", b"after"),
            ],
        )
    relay = OutboxRelay(
        kit.engine, kit.producer, kit.outbox, asyncio.Event(), stats_every_seconds=0
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        published = await read_messages(kit.settings, f"{kit.topic}.out", lambda m: True, 2)
        assert [m.value for m in published] == [b"before", b"after"]
        await until(lambda: _parked_reported(relay), seconds=10)
    finally:
        stop.set()
        await task
    status = await relay.readiness()
    assert status.ok
    assert "1 message(s) parked" in status.detail
    assert _metric("retain_outbox_parked", schema=kit.schema) == 1
    async with kit.engine.connect() as connection:
        [(reason, size)] = (
            await connection.execute(
                text(f'SELECT reason, length(value) FROM "{kit.schema}".outbox_parked')  # noqa: S608
            )
        ).all()
        left = await connection.scalar(text(f'SELECT count(*) FROM "{kit.schema}".outbox'))  # noqa: S608
    assert reason.startswith("MessageSizeTooLargeError")
    assert size == len(huge)
    assert left == 0


class _BrokerDown:
    """A producer whose broker never answers, to watch the relay back off and stall."""

    async def send(self, *args: object, **kwargs: object) -> asyncio.Future[None]:
        from aiokafka.errors import KafkaTimeoutError

        raise KafkaTimeoutError("no broker")


async def test_a_failing_relay_backs_off_keeps_every_row_and_reports_itself_stalled(
    kit: Kit,
) -> None:
    async with kit.engine.begin() as connection:
        await kit.outbox.enqueue(connection, [OutboxMessage(f"{kit.topic}.out", b"k", b"v")])
    errors = _metric("retain_outbox_publish_errors_total", schema=kit.schema)
    relay = OutboxRelay(
        kit.engine,
        _BrokerDown(),
        kit.outbox,
        asyncio.Event(),
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
        stalled_after_seconds=0.5,
        stats_every_seconds=0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await until(lambda: _not_ready(relay), seconds=10)
    finally:
        stop.set()
        await task
    status = await relay.readiness()
    assert "stalled" in status.detail
    assert "no broker" in status.detail
    assert _metric("retain_outbox_stalled", schema=kit.schema) == 1
    assert _metric("retain_outbox_depth", schema=kit.schema) == 1
    # Backing off: a handful of attempts in over half a second, not thousands.
    assert 2 <= _metric("retain_outbox_publish_errors_total", schema=kit.schema) - errors <= 15

"""The shared consumer loop against the real broker: commits, restarts, dead letters, retries."""

import asyncio
import uuid
from collections.abc import Sequence

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.topics import TopicSpec
from services.runtime.consumer import ConsumerConfig, ConsumerLoop, Poison, Record
from services.runtime.kafka import create_producer, ensure_topics
from services.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def _fresh_topics(settings: ServiceSettings) -> tuple[str, str]:
    """A source topic and its dead-letter topic, unique to the test."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    specs = [
        TopicSpec(name, 3, "delete", None, "test key", "source"),
        TopicSpec(f"{name}.dlq", 1, "delete", None, "test key", "dead letters"),
    ]
    await ensure_topics(settings, specs)
    return name, f"{name}.dlq"


async def _produce(producer: AIOKafkaProducer, topic: str, values: Sequence[bytes]) -> None:
    for i, value in enumerate(values):
        await producer.send_and_wait(topic, key=f"k{i % 5}".encode(), value=value)


class Recorder:
    """A handler that records what it processed and stops the loop after `expected` records."""

    def __init__(self, expected: int, stop: asyncio.Event) -> None:
        self.seen: list[bytes] = []
        self._expected = expected
        self._stop = stop

    async def __call__(self, batch: Sequence[Record]) -> Sequence[Poison]:
        poison = []
        for record in batch:
            assert record.value is not None
            if record.value.startswith(b"poison"):
                poison.append(Poison(record, ValueError("not a valid event")))
            else:
                self.seen.append(record.value)
        if len(self.seen) + len(poison) >= self._expected:
            self._stop.set()
        return poison


async def _run_loop(
    settings: ServiceSettings,
    producer: AIOKafkaProducer,
    config: ConsumerConfig,
    expected: int,
    handler_factory: type[Recorder] = Recorder,
) -> Recorder:
    stop = asyncio.Event()
    handler = handler_factory(expected, stop)
    loop = ConsumerLoop(settings, config, handler, producer)
    await asyncio.wait_for(loop.run(stop), timeout=60)
    return handler


async def _dead_letters(
    settings: ServiceSettings, topic: str, count: int
) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        letters: list[dict[str, object]] = []
        while len(letters) < count:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=20)
            letters += [orjson.loads(r.value) for records in batches.values() for r in records]
        return letters
    finally:
        await consumer.stop()


async def test_committed_offsets_survive_a_consumer_restart(settings: ServiceSettings) -> None:
    topic, dlq = await _fresh_topics(settings)
    config = ConsumerConfig(group_id=f"group-{topic}", topics=(topic,), dead_letter_topic=dlq)
    producer = create_producer(settings, "test")
    await producer.start()
    try:
        first = [f"first-{i}".encode() for i in range(30)]
        await _produce(producer, topic, first)
        first_run = await _run_loop(settings, producer, config, expected=30)
        assert sorted(first_run.seen) == sorted(first)

        # A new consumer in the same group starts after the committed offsets: it sees only
        # what was produced since, nothing twice.
        second = [f"second-{i}".encode() for i in range(10)]
        await _produce(producer, topic, second)
        second_run = await _run_loop(settings, producer, config, expected=10)
        assert sorted(second_run.seen) == sorted(second)
    finally:
        await producer.stop()


async def test_poison_goes_to_the_dead_letter_topic_and_the_loop_moves_on(
    settings: ServiceSettings,
) -> None:
    topic, dlq = await _fresh_topics(settings)
    config = ConsumerConfig(group_id=f"group-{topic}", topics=(topic,), dead_letter_topic=dlq)
    producer = create_producer(settings, "test")
    await producer.start()
    try:
        await _produce(producer, topic, [b"good-1", b"poison-1", b"good-2"])
        run = await _run_loop(settings, producer, config, expected=3)
        assert sorted(run.seen) == [b"good-1", b"good-2"]
        [letter] = await _dead_letters(settings, dlq, 1)
        assert letter["original_topic"] == topic
        assert letter["value"] == "poison-1"
        assert letter["error"] == "not a valid event"
        assert letter["consumer_group"] == config.group_id
    finally:
        await producer.stop()


class FlakyThenPoisonous(Recorder):
    """Fails twice as if the database were down, then raises on one bad record."""

    failures_left = 2

    async def __call__(self, batch: Sequence[Record]) -> Sequence[Poison]:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionRefusedError("database restarting")
        if any(record.value == b"explodes" for record in batch):
            raise ValueError("cannot fold this record")
        return await super().__call__(batch)


async def test_transient_errors_are_retried_and_a_failing_record_is_isolated(
    settings: ServiceSettings,
) -> None:
    topic, dlq = await _fresh_topics(settings)
    config = ConsumerConfig(
        group_id=f"group-{topic}",
        topics=(topic,),
        dead_letter_topic=dlq,
        retry_initial_seconds=0.05,
    )
    producer = create_producer(settings, "test")
    await producer.start()
    try:
        values = [b"a", b"b", b"explodes", b"c"]
        # One partition keeps them in one batch, so isolation has something to split.
        for value in values:
            await producer.send_and_wait(topic, key=b"same", value=value)
        run = await _run_loop(
            settings, producer, config, expected=3, handler_factory=FlakyThenPoisonous
        )
        assert sorted(run.seen) == [b"a", b"b", b"c"]
        [letter] = await _dead_letters(settings, dlq, 1)
        assert letter["value"] == "explodes"
        assert (letter["error_type"], letter["error"]) == ("ValueError", "cannot fold this record")
    finally:
        await producer.stop()

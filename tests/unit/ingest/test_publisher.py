"""The publisher: a request is answered only once every one of its records is acknowledged, and
any record refused, not taken or not acknowledged in time makes it BrokerUnavailableError.

librdkafka is replaced by a producer that keeps what was produced and reports its outcome when
the test says so, from poll() as librdkafka does. The real client against a broker: the
integration test tests/integration/ingest/test_publisher_kafka.py.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import REGISTRY
from pydantic import SecretStr

from schemas.parse import parse_event
from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint, stamp
from services.ingest.publisher import (
    BrokerUnavailableError,
    Delivered,
    Publisher,
    producer_config,
)
from services.runtime.settings import Environment, ServiceSettings


class FakeProducer:
    """produce/poll/purge/list_topics as confluent_kafka.Producer has them; each record's
    outcome is decided by `acknowledge` and reported by the next poll()."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[tuple[str, bytes, str | None, Delivered]] = []
        self._unreported: list[Delivered] = []
        self._ready: list[tuple[Delivered, KafkaError | None]] = []
        self.capacity: int | None = None
        self.reachable = True

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: Delivered | None = None,
        on_delivery: Delivered | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        if self.capacity is not None and len(self._unreported) >= self.capacity:
            raise BufferError("Local: Queue full")
        assert isinstance(value, bytes)
        assert on_delivery is not None
        assert key is None or isinstance(key, str)
        self.produced.append((topic, value, key, on_delivery))
        self._unreported.append(on_delivery)

    def acknowledge(self, count: int | None = None, error: KafkaError | None = None) -> None:
        """The outcome of the oldest `count` unreported records (all by default)."""
        count = len(self._unreported) if count is None else count
        taken, self._unreported = self._unreported[:count], self._unreported[count:]
        self._ready += [(delivered, error) for delivered in taken]

    def poll(self, timeout: float = -1) -> int:
        ready, self._ready = self._ready, []
        for delivered, error in ready:
            delivered(error, None)  # type: ignore[arg-type]
        return len(ready)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self.acknowledge(error=KafkaError(KafkaError._PURGE_QUEUE))

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if not self.reachable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return object()

    def fail(self, error: KafkaError) -> None:
        """A client-level error, as librdkafka reports it through error_cb."""
        self.config["error_cb"](error)


def _publisher(timeout_seconds: float = 30) -> tuple[Publisher, FakeProducer]:
    made: list[FakeProducer] = []

    def make(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config))
        return made[0]

    publisher = Publisher({"acks": "all"}, timeout_seconds, producer_type=make)
    publisher.start()
    return publisher, made[0]


def _touchpoints(count: int) -> list[Touchpoint]:
    now = datetime.now(UTC)
    return [
        stamp(
            parse_event({"type": "track", "event": "Tick", "userId": f"u-{n % 20}"}),
            received_at=now,
            source_id="shop",
        )
        for n in range(count)
    ]


def _rejection() -> RejectedTouchpoint:
    return RejectedTouchpoint.of(
        b'{"type":"track"}',
        reason="validation_failed",
        message="event: required",
        received_at=datetime.now(UTC),
        source_id="shop",
        errors=[],
        message_id=None,
    )


def _produced(topic: str) -> float:
    sample = REGISTRY.get_sample_value("retain_produced_records_total", {"topic": topic})
    return sample or 0.0


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_request_is_answered_once_every_one_of_its_records_is_acknowledged() -> None:
    publisher, producer = _publisher()
    touchpoints = _touchpoints(3)
    before = _produced(TOUCHPOINTS), _produced(TOUCHPOINTS_REJECTED)

    publishing = asyncio.create_task(publisher.publish(touchpoints, [_rejection()]))
    await _settle()
    assert [(topic, key) for topic, _, key, _ in producer.produced] == [
        *((TOUCHPOINTS, t.customer_key) for t in touchpoints),
        (TOUCHPOINTS_REJECTED, None),  # no key: a random partition, as before
    ]
    assert [value for _, value, _, _ in producer.produced[:3]] == [t.to_json() for t in touchpoints]
    producer.acknowledge(3)
    await asyncio.sleep(0.01)  # the publisher polls meanwhile: the three are reported
    assert not publishing.done()  # the rejection is not acknowledged yet

    producer.acknowledge()
    await publishing
    assert _produced(TOUCHPOINTS) - before[0] == 3
    assert _produced(TOUCHPOINTS_REJECTED) - before[1] == 1


async def test_reports_of_concurrent_requests_answer_each_of_them() -> None:
    publisher, producer = _publisher()
    first = asyncio.create_task(publisher.publish(_touchpoints(2), []))
    second = asyncio.create_task(publisher.publish(_touchpoints(5), []))
    await _settle()
    producer.acknowledge()
    await asyncio.gather(first, second)


async def test_a_record_the_broker_refuses_fails_its_request() -> None:
    publisher, producer = _publisher()
    publishing = asyncio.create_task(publisher.publish(_touchpoints(10), []))
    await _settle()
    producer.acknowledge(9)
    producer.acknowledge(1, KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(BrokerUnavailableError):
        await publishing


async def test_no_acknowledgement_in_time_is_broker_unavailable() -> None:
    publisher, producer = _publisher(timeout_seconds=0.05)
    with pytest.raises(BrokerUnavailableError):
        await publisher.publish(_touchpoints(3), [])
    producer.acknowledge()  # late reports of the abandoned request are harmless
    producer.poll(0)


async def test_a_full_producer_queue_is_broker_unavailable_at_once() -> None:
    publisher, producer = _publisher()
    producer.capacity = 4
    with pytest.raises(BrokerUnavailableError, match="Queue full"):
        await publisher.publish(_touchpoints(6), [])
    producer.acknowledge()  # what was queued is still sent; its reports go nowhere
    producer.poll(0)


async def test_closing_gives_up_on_unacknowledged_records_and_fails_their_requests() -> None:
    publisher, _producer = _publisher()
    publishing = asyncio.create_task(publisher.publish(_touchpoints(2), []))
    await _settle()
    await publisher.close(grace_seconds=0.05)
    with pytest.raises(BrokerUnavailableError):
        await publishing


async def test_readiness_follows_the_cluster_and_a_fatal_producer_error() -> None:
    publisher, producer = _publisher()
    assert await publisher.reachable()
    producer.reachable = False
    assert not await publisher.reachable()
    producer.reachable = True
    producer.fail(KafkaError(KafkaError._TRANSPORT))  # passing: still ready
    assert await publisher.reachable()
    producer.fail(KafkaError(KafkaError._FENCED, fatal=True))
    assert not await publisher.reachable()


def test_the_producer_is_idempotent_waits_for_all_replicas_and_partitions_by_murmur2() -> None:
    settings = ServiceSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers="kafka-1:9093,kafka-2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ingest",
        kafka_sasl_password=SecretStr("secret"),
    )
    config = producer_config(settings, "retain-ingest")
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    # Java's and aiokafka's default: the partition of a key is the same whichever client wrote.
    assert config["partitioner"] == "murmur2_random"
    assert config["allow.auto.create.topics"] is False
    assert config["bootstrap.servers"] == "kafka-1:9093,kafka-2:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        "SCRAM-SHA-512",
        "ingest",
        "secret",
    )

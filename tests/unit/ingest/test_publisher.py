"""The publisher: touchpoints go out in one batch per partition, on the partition send() chose,
and a request succeeds only once every batch carrying its events is acknowledged."""

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from schemas.parse import parse_event
from schemas.topics import TOUCHPOINTS
from schemas.topics.touchpoints_v1 import Touchpoint, stamp
from services.ingest.publisher import BrokerUnavailableError, Publisher

PARTITIONS = 6


class FakeProducer:
    """create_batch/send_batch as aiokafka has them; each sent batch waits for `acknowledge`."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, BatchBuilder, asyncio.Future[None]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        assert topic == TOUCHPOINTS
        return set(range(PARTITIONS))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(256 * 1024, 0)

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, batch, acknowledged))
        return acknowledged

    def records(self) -> dict[int, list[tuple[bytes, bytes]]]:
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for partition, batch, _ in self.sent:
            records = MemoryRecords(bytes(batch._build())).next_batch()
            by_partition.setdefault(partition, []).extend((r.key, r.value) for r in records)
        return by_partition

    def acknowledge(self, error: Exception | None = None) -> None:
        for _, _, acknowledged in self.sent:
            if error is None:
                acknowledged.set_result(None)
            else:
                acknowledged.set_exception(error)


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


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_each_event_goes_to_the_partition_of_its_key_in_one_batch_per_partition() -> None:
    producer = FakeProducer()
    publisher = Publisher(producer, timeout_seconds=5)
    touchpoints = _touchpoints(100)

    publishing = asyncio.create_task(publisher.publish(touchpoints, []))
    await _settle()
    assert not publishing.done()  # nothing is acknowledged yet
    producer.acknowledge()
    await publishing

    assert len(producer.sent) == len({p for p, _, _ in producer.sent})
    partitioner, partitions = DefaultPartitioner(), list(range(PARTITIONS))
    expected: dict[int, list[tuple[bytes, bytes]]] = {}
    for touchpoint in touchpoints:
        key = touchpoint.customer_key.encode()
        partition = partitioner(key, partitions, partitions)
        expected.setdefault(partition, []).append((key, touchpoint.to_json()))
    assert producer.records() == expected  # same partitions, same order, same bytes


async def test_concurrent_requests_share_a_partitions_batch() -> None:
    producer = FakeProducer()
    publisher = Publisher(producer, timeout_seconds=5)
    first, second = _touchpoints(1), _touchpoints(1)  # the same key: the same partition

    both = asyncio.gather(publisher.publish(first, []), publisher.publish(second, []))
    await _settle()
    producer.acknowledge()
    await both

    [(_, batch, _)] = producer.sent
    assert batch.record_count() == 2


async def test_a_batch_the_broker_does_not_acknowledge_fails_every_request_in_it() -> None:
    producer = FakeProducer()
    publisher = Publisher(producer, timeout_seconds=5)

    publishing = asyncio.create_task(publisher.publish(_touchpoints(10), []))
    await _settle()
    producer.acknowledge(KafkaTimeoutError())
    with pytest.raises(BrokerUnavailableError):
        await publishing


async def test_no_acknowledgement_in_time_is_broker_unavailable() -> None:
    producer = FakeProducer()
    publisher = Publisher(producer, timeout_seconds=0.05)
    with pytest.raises(BrokerUnavailableError):
        await publisher.publish(_touchpoints(3), [])

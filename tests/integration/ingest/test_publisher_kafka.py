"""The publisher against the suite's broker: once publish() returns, every record of the request
is on its topic, on the partition murmur2 gives its key (what aiokafka and the Java client
choose), and a key's records are in the order they were published."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import murmur2

from schemas.parse import parse_event
from schemas.topics import TOPICS, TOUCHPOINTS, TOUCHPOINTS_REJECTED
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint, stamp
from services.ingest.main import open_publisher
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from services.runtime.kafka import ensure_topics
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import Message, read_messages

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(settings: ServiceSettings) -> AsyncIterator[Publisher]:
    await ensure_topics(settings)
    ingest_settings = IngestSettings(**settings.model_dump())
    async with AsyncExitStack() as resources:
        yield await open_publisher(ingest_settings, resources)


def _touchpoints(source_id: str, keys: int, count: int) -> list[Touchpoint]:
    now = datetime.now(UTC)
    return [
        stamp(
            parse_event(
                {
                    "type": "track",
                    "event": "Tick",
                    "userId": f"user-{n % keys}-{source_id}",
                    "properties": {"n": n},
                }
            ),
            received_at=now,
            source_id=source_id,
        )
        for n in range(count)
    ]


def _of_source(source_id: str) -> Callable[[Message], bool]:
    needle = f'"{source_id}"'.encode()  # sourceId in touchpoints, source_id in rejections
    return lambda message: message.value is not None and needle in message.value


async def test_every_record_of_an_answered_request_is_on_its_murmur2_partition_in_order(
    publisher: Publisher, settings: ServiceSettings
) -> None:
    source_id = f"src_{uuid.uuid4().hex[:12]}"
    first, second = _touchpoints(source_id, 40, 300), _touchpoints(source_id, 40, 300)[::-1]
    await publisher.publish(first, [])
    await publisher.publish(second, [])

    found = await read_messages(settings, TOUCHPOINTS, _of_source(source_id), 600)
    assert len(found) == 600
    [partitions] = [spec.partitions for spec in TOPICS if spec.name == TOUCHPOINTS]
    for message in found:
        assert message.key is not None
        # Java's rule: the positive murmur2 of the key's bytes, modulo the partitions.
        assert message.partition == (murmur2(message.key) & 0x7FFFFFFF) % partitions
    published = [(t.customer_key.encode(), t.to_json()) for t in [*first, *second]]
    for key in {key for key, _ in published}:
        on_topic = sorted((m.offset, m.value) for m in found if m.key == key)
        assert [value for _, value in on_topic] == [v for k, v in published if k == key]


async def test_rejections_are_published_beside_the_touchpoints(
    publisher: Publisher, settings: ServiceSettings
) -> None:
    source_id = f"src_{uuid.uuid4().hex[:12]}"
    rejection = RejectedTouchpoint.of(
        b'{"type":"track","userId":"u"}',
        reason="validation_failed",
        message="event: required",
        received_at=datetime.now(UTC),
        source_id=source_id,
        errors=[],
        message_id=None,
    )
    await publisher.publish(_touchpoints(source_id, 1, 1), [rejection])

    [touchpoint] = await read_messages(settings, TOUCHPOINTS, _of_source(source_id), 1)
    [rejected] = await read_messages(settings, TOUCHPOINTS_REJECTED, _of_source(source_id), 1)
    assert orjson.loads(touchpoint.value or b"")["sourceId"] == source_id
    assert rejected.key is None
    assert orjson.loads(rejected.value or b"")["reason"] == "validation_failed"

"""The pure parts of the consumer loop: dead-letter envelopes and the transient/poison split."""

from dataclasses import dataclass

import orjson
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import OperationalError

from schemas.topics.dlq_v1 import MAX_VALUE_BYTES
from services.runtime.consumer import dead_letter_value
from services.runtime.failures import is_transient


@dataclass(frozen=True)
class FakeRecord:
    topic: str = "touchpoints.v1"
    partition: int = 2
    offset: int = 41
    timestamp: int = 0
    key: bytes | None = b"user-1"
    value: bytes | None = b'{"type": "track"}'


def test_dead_letter_says_where_the_record_came_from_and_why() -> None:
    letter = orjson.loads(
        dead_letter_value(FakeRecord(), ValueError("bad event"), "retain-profile")
    )
    assert letter["original_topic"] == "touchpoints.v1"
    assert (letter["partition"], letter["offset"], letter["key"]) == (2, 41, "user-1")
    assert letter["value"] == '{"type": "track"}'
    assert letter["value_encoding"] == "utf-8"
    assert letter["value_truncated"] is False
    assert letter["error"] == "bad event"
    assert letter["error_type"] == "ValueError"
    assert letter["consumer_group"] == "retain-profile"


def test_dead_letter_keeps_binary_values_as_base64() -> None:
    letter = orjson.loads(dead_letter_value(FakeRecord(value=b"\xff\xfe"), ValueError("x"), "g"))
    assert letter["value_encoding"] == "base64"
    assert letter["value"] == "//4="


def test_dead_letter_bounds_huge_values() -> None:
    huge = b"a" * (MAX_VALUE_BYTES + 10)
    letter = orjson.loads(dead_letter_value(FakeRecord(value=huge), ValueError("x"), "g"))
    assert letter["value_truncated"] is True
    assert len(letter["value"]) == MAX_VALUE_BYTES
    assert letter["value_size"] == MAX_VALUE_BYTES + 10


def test_infrastructure_failures_are_transient_and_bugs_are_not() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(KafkaConnectionError())
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert not is_transient(ValueError("cannot parse"))
    assert not is_transient(KeyError("order_id"))

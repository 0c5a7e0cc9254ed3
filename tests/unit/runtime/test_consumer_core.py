"""The pure parts of the consumer kit: dead-letter envelopes and the three kinds of failure."""

from dataclasses import dataclass

import orjson
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import OperationalError, ProgrammingError

from schemas.topics.dlq_v1 import MAX_VALUE_BYTES
from services.runtime.failures import FatalError, RetryableError, is_fatal, is_transient
from services.runtime.transactional import dead_letter, event_id_of


def dead_letter_value(record: "FakeRecord", error: Exception, group_id: str) -> bytes:
    return dead_letter(record, error, group_id).model_dump_json().encode()


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


class _PgError(Exception):
    """Shaped like asyncpg's errors: the SQLSTATE in `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str) -> ProgrammingError:
    """As SQLAlchemy raises it: the driver's error behind the DBAPI error."""
    driver_error = Exception("wrapped")
    driver_error.__cause__ = _PgError(sqlstate)
    return ProgrammingError("SELECT", {}, driver_error)


def test_a_wrong_schema_or_statement_is_fatal_neither_transient_nor_poison() -> None:
    for sqlstate in ("42P01", "42703", "42883", "42501", "3F000", "0A000"):
        assert is_fatal(_wrapped(sqlstate)), sqlstate
        assert not is_transient(_wrapped(sqlstate)), sqlstate
    assert is_fatal(FatalError("bug"))
    # Data errors (invalid text, numeric overflow) are about one record: poison, not fatal.
    for sqlstate in ("22P02", "22003", "23505"):
        assert not is_fatal(_wrapped(sqlstate)), sqlstate
    assert not is_fatal(ValueError("cannot parse"))
    assert is_transient(RetryableError("lost a race"))
    assert not is_fatal(RetryableError())


def test_the_event_id_of_a_record_is_its_event_id_or_message_id() -> None:
    @dataclass
    class Lifecycle:
        event_id: str

    @dataclass
    class Touchpoint:
        message_id: str

    assert event_id_of(Lifecycle("e-1")) == "e-1"
    assert event_id_of(Touchpoint("m-1")) == "m-1"
    assert event_id_of("just a value") is None

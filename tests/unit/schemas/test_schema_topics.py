"""Topic payloads: the touchpoint and its timestamp rule, and every payload against its schema."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import OrderCompletedEvent, Touchpoint, corrected_timestamp, parse_event, stamp
from schemas.catalog import PAYLOADS
from schemas.topics import (
    LIFECYCLE,
    NOTIFICATIONS,
    PROFILES,
    SCORES,
    TOPICS,
    TOUCHPOINTS,
    TOUCHPOINTS_DLQ,
    TOUCHPOINTS_REJECTED,
)
from schemas.topics.dlq_v1 import MAX_VALUE_BYTES, DeadLetter
from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.touchpoints_rejected_v1 import (
    MAX_PAYLOAD_BYTES,
    RejectedTouchpoint,
    bounded_text,
)

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "jsonschema"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return RECEIVED + timedelta(seconds=seconds)


# The corrected timestamp


def test_corrected_timestamp_removes_client_clock_skew() -> None:
    # The client clock runs 1 hour fast: it stamped the event at +3600-10 and sent it at +3600.
    when = corrected_timestamp(
        received_at=RECEIVED, sent_at=at(3600), original_timestamp=at(3590), timestamp=None
    )
    assert when == at(-10)


def test_corrected_timestamp_uses_client_timestamp_when_no_original() -> None:
    when = corrected_timestamp(
        received_at=RECEIVED, sent_at=at(-60), original_timestamp=None, timestamp=at(-65)
    )
    assert when == at(-5)


def test_original_timestamp_wins_over_timestamp() -> None:
    when = corrected_timestamp(
        received_at=RECEIVED, sent_at=at(0), original_timestamp=at(-2), timestamp=at(-100)
    )
    assert when == at(-2)


def test_without_sent_at_the_client_timestamp_is_kept() -> None:
    when = corrected_timestamp(
        received_at=RECEIVED, sent_at=None, original_timestamp=at(-30), timestamp=at(-20)
    )
    assert when == at(-20)


def test_without_client_times_received_at_is_used() -> None:
    when = corrected_timestamp(
        received_at=RECEIVED, sent_at=at(5), original_timestamp=None, timestamp=None
    )
    assert when == RECEIVED


def test_corrected_timestamp_is_never_after_received_at() -> None:
    assert (
        corrected_timestamp(
            received_at=RECEIVED, sent_at=None, original_timestamp=None, timestamp=at(86400)
        )
        == RECEIVED
    )
    assert (
        corrected_timestamp(
            received_at=RECEIVED, sent_at=at(0), original_timestamp=at(30), timestamp=None
        )
        == RECEIVED
    )


def test_corrected_timestamp_is_never_before_1970() -> None:
    when = corrected_timestamp(
        received_at=RECEIVED,
        sent_at=datetime(2099, 1, 1, tzinfo=UTC),
        original_timestamp=datetime(1971, 1, 1, tzinfo=UTC),
        timestamp=None,
    )
    assert when == datetime(1970, 1, 1, tzinfo=UTC)


# touchpoints.v1


RAW = {
    "type": "track",
    "event": "Order Completed",
    "userId": 42,
    "anonymousId": "anon-1",
    "timestamp": "2024-05-01T13:00:00",  # client clock one hour fast, no zone
    "sentAt": "2024-05-01T13:00:02Z",
    "context": {"library": {"name": "analytics-python", "version": "2.3.2"}, "device": {"x": 1}},
    "properties": {
        "order_id": "o1",
        "revenue": 19.99,
        "currency": "eur",
        "products": [{"product_id": 7, "price": 19.99, "quantity": 1}],
        "gift": True,
    },
    "writeKey": "secret",
}


def test_stamp_sets_server_fields() -> None:
    event = parse_event(RAW)
    touchpoint = stamp(event, received_at=RECEIVED, source_id="src_1", new_message_id=lambda: "m-1")
    assert touchpoint.message_id == "m-1"
    assert touchpoint.event.message_id == "m-1"
    assert touchpoint.customer_key == "42"
    assert touchpoint.source_id == "src_1"
    assert touchpoint.received_at == RECEIVED
    assert touchpoint.timestamp == at(-2)
    assert touchpoint.event.timestamp == datetime(2024, 5, 1, 13, tzinfo=UTC)  # as the client said


def test_stamp_keeps_the_client_message_id() -> None:
    event = parse_event({**RAW, "messageId": "client-1"})
    touchpoint = stamp(event, received_at=RECEIVED, source_id="s", new_message_id=lambda: "x")
    assert touchpoint.message_id == "client-1"


def test_customer_key_is_user_id_else_anonymous_id() -> None:
    anonymous = {k: v for k, v in RAW.items() if k != "userId"}
    assert stamp(parse_event(anonymous), received_at=RECEIVED, source_id="s").customer_key == (
        "anon-1"
    )


def _validated_touchpoint(touchpoint: Touchpoint) -> Touchpoint:
    """What validating `stamp`'s fields gives, as stamp did before it trusted them."""
    return Touchpoint(**{name: getattr(touchpoint, name) for name in Touchpoint.model_fields})


@pytest.mark.parametrize(
    "raw",
    [
        RAW,
        {**RAW, "messageId": "client-1"},
        {k: v for k, v in RAW.items() if k not in ("userId", "sentAt", "originalTimestamp")},
        {"type": "page", "anonymousId": "a", "name": "Home", "properties": {"path": "/"}},
        {"type": "identify", "userId": 7, "traits": {"email": "a@b.example"}},
        {"type": "alias", "userId": "u-2", "previousId": "a-1"},
    ],
)
def test_stamp_gives_what_validating_its_fields_gives(raw: dict[str, Any]) -> None:
    touchpoint = stamp(parse_event(raw), received_at=RECEIVED, source_id="src_1")
    validated = _validated_touchpoint(touchpoint)
    assert touchpoint == validated
    assert touchpoint.model_fields_set == validated.model_fields_set
    assert touchpoint.to_json() == validated.to_json()
    assert touchpoint.model_dump_json() == validated.model_dump_json()
    assert Touchpoint.from_json(touchpoint.to_json()).model_dump() == validated.model_dump()


def test_stamp_validates_server_fields_not_in_the_contracts_form() -> None:
    in_paris = RECEIVED.astimezone(timezone(timedelta(hours=2)))
    touchpoint = stamp(parse_event(RAW), received_at=in_paris, source_id="src_1")
    assert touchpoint.received_at.tzinfo is UTC
    assert touchpoint.received_at == RECEIVED
    with pytest.raises(ValidationError):
        stamp(parse_event(RAW), received_at=RECEIVED, source_id="")


def test_touchpoint_round_trips_through_json() -> None:
    touchpoint = stamp(parse_event(RAW), received_at=RECEIVED, source_id="src_1")
    data = touchpoint.to_json()
    decoded = json.loads(data)
    assert decoded == json.loads(touchpoint.model_dump_json(exclude_none=True))
    assert "writeKey" not in decoded["event"]
    assert decoded["event"]["properties"]["revenue"] == 19.99  # a JSON number, as Segment sends
    assert decoded["event"]["properties"]["gift"] is True
    assert decoded["event"]["context"]["device"] == {"x": 1}
    assert decoded["timestamp"] == "2024-05-01T11:59:58Z"
    back = Touchpoint.model_validate_json(data)
    assert back.model_dump() == touchpoint.model_dump()
    assert isinstance(back.event, OrderCompletedEvent)
    assert back.event.properties.products[0].product_id == "7"


# touchpoints.rejected.v1 and the dead-letter envelope


def test_bounded_text_cuts_on_a_character_boundary() -> None:
    assert bounded_text("héllo".encode(), 100) == ("héllo", False)
    assert bounded_text("héllo".encode(), 2) == ("h", True)  # é is two bytes: not split
    assert bounded_text(b"ok\xff", 100) == ("ok\ufffd", False)


def test_rejected_payload_is_bounded_with_a_flag() -> None:
    raw = json.dumps({"type": "track", "blob": "x" * (MAX_PAYLOAD_BYTES * 2)}).encode()
    rejected = RejectedTouchpoint.of(
        raw,
        reason="event_too_large",
        message="event is larger than 32 KB",
        received_at=RECEIVED,
        source_id="src_1",
        message_id="m" * 1000,
    )
    assert rejected.payload_truncated
    assert len(rejected.payload.encode()) == MAX_PAYLOAD_BYTES
    assert rejected.payload_size == len(raw)
    assert rejected.message_id is None  # too long to keep
    small = RejectedTouchpoint.of(
        b'{"type":"x"}',
        reason="validation_failed",
        message="bad type",
        received_at=RECEIVED,
        source_id=None,
        errors=[{"field": "type", "message": "must be one of: identify"}],
    )
    assert not small.payload_truncated
    assert small.payload == '{"type":"x"}'


def test_dead_letter_keeps_text_and_base64_encodes_binary() -> None:
    error = ValueError("bad payload")
    text = DeadLetter.of(
        topic=TOUCHPOINTS,
        partition=3,
        offset=17,
        key=b"user-1",
        value=b'{"a":1}',
        error=error,
        failed_at=RECEIVED,
        consumer_group="profile",
    )
    assert (text.key, text.value, text.value_encoding) == ("user-1", '{"a":1}', "utf-8")
    assert text.error_type == "ValueError"
    assert text.original_value() == b'{"a":1}'
    binary = DeadLetter.of(
        topic=TOUCHPOINTS,
        partition=0,
        offset=1,
        key=None,
        value=b"\x00\xff" * MAX_VALUE_BYTES,
        error=error,
        failed_at=RECEIVED,
        consumer_group="profile",
    )
    assert binary.value_encoding == "base64"
    assert binary.value_truncated
    assert binary.value_size == 2 * MAX_VALUE_BYTES
    assert binary.original_value() == (b"\x00\xff" * MAX_VALUE_BYTES)[:MAX_VALUE_BYTES]
    assert binary.value is not None
    assert base64.b64decode(binary.value)[:2] == b"\x00\xff"
    tombstone = DeadLetter.of(
        topic=TOUCHPOINTS,
        partition=0,
        offset=2,
        key=b"k",
        value=None,
        error=error,
        failed_at=RECEIVED,
        consumer_group="g",
    )
    assert tombstone.value is None
    assert tombstone.original_value() is None


def test_profile_money_is_an_exact_decimal_string() -> None:
    profile = ProfileSnapshot.model_validate(
        {
            "customer_id": "c1",
            "revision": 3,
            "updated_at": RECEIVED,
            "commerce": {"orders_count": 2, "net_revenue": "39.98", "gross_revenue": 1e3},
        }
    )
    assert profile.commerce.net_revenue == Decimal("39.98")
    dumped = json.loads(profile.model_dump_json())
    assert dumped["commerce"]["net_revenue"] == "39.98"
    assert dumped["commerce"]["gross_revenue"] == "1000.0"
    assert dumped["commerce"]["refunded_revenue"] == "0"


# Every payload: the model accepts a sample and the exported JSON Schema agrees.


def _touchpoint() -> dict[str, Any]:
    touchpoint = stamp(parse_event(RAW), received_at=RECEIVED, source_id="src_1")
    decoded: dict[str, Any] = json.loads(touchpoint.to_json())
    return decoded


SAMPLES: dict[str, list[dict[str, Any]]] = {
    TOUCHPOINTS: [_touchpoint()],
    TOUCHPOINTS_REJECTED: [
        json.loads(
            RejectedTouchpoint.of(
                b'{"type":"track"}',
                reason="validation_failed",
                message="event: is required",
                received_at=RECEIVED,
                source_id="src_1",
                errors=[{"field": "event", "message": "is required"}],
            ).model_dump_json()
        )
    ],
    PROFILES: [
        {
            "customer_id": "c1",
            "revision": 1,
            "updated_at": "2024-05-01T12:00:00Z",
            "user_id": "u1",
            "anonymous_ids": ["a1", "a2"],
            "email": "ada@example.com",
            "traits": {"plan": "gold"},
            "consent": {"email_marketing": "opted_in", "email_marketing_source": "identify"},
            "acquisition": {"channel": "email", "source": "newsletter", "referral_code": "ADA10"},
            "commerce": {"orders_count": 1, "net_revenue": "19.99", "currency": "EUR"},
            "cart": {"items": [{"product_id": "p1", "quantity": 2, "price": "3.50"}]},
            "loyalty": {"points_earned": 20, "points_balance": 20},
        }
    ],
    SCORES: [
        {
            "customer_id": "c1",
            "computed_at": "2024-05-01T12:00:00Z",
            "clv_historical": "120.50",
            "clv_predicted": "300",
            "rfm": {"recency": 5, "frequency": 3, "monetary": 4, "segment": "loyal"},
            "value_tier": "most_valuable",
            "ladder_step": "client",
            "lifecycle_stage": "retention",
            "churn_risk": 0.12,
        }
    ],
    LIFECYCLE: [
        {
            "type": "stage_changed",
            "event_id": "e1",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "from_stage": "acquisition",
            "to_stage": "retention",
        },
        {
            "type": "cart_abandoned",
            "event_id": "e2",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "items_count": 1,
            "value": "3.50",
            "last_activity_at": "2024-05-01T11:00:00Z",
            "items": [{"product_id": "p1", "quantity": 1, "price": "3.50"}],
        },
        {
            "type": "consent_changed",
            "event_id": "e3",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "status": "opted_out",
            "source": "Unsubscribed",
        },
        {
            "type": "profiles_merged",
            "event_id": "e4",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "absorbed_customer_ids": ["c2"],
        },
        {
            "type": "customer_erased",
            "event_id": "e5",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
        },
    ],
    NOTIFICATIONS: [
        {
            "type": "suppressed",
            "notification_id": "n1",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "kind": "marketing",
            "template": "cart_abandoned",
            "reason": "no_consent",
        },
        {
            "type": "bounced",
            "notification_id": "n2",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "kind": "transactional",
            "template": "order_confirmation",
            "bounce_type": "hard",
            "smtp_status": 550,
        },
        {
            "type": "clicked",
            "notification_id": "n3",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "kind": "marketing",
            "template": "welcome_1",
            "journey": "welcome",
            "event_id": "e1",
            "url": "https://shop.example/p/1",
        },
        {
            "type": "unsubscribed",
            "notification_id": "n3",
            "customer_id": "c1",
            "occurred_at": "2024-05-01T12:00:00Z",
            "kind": "marketing",
            "template": "welcome_1",
            "event_id": "e2",
        },
    ],
    TOUCHPOINTS_DLQ: [
        json.loads(
            DeadLetter.of(
                topic=TOUCHPOINTS,
                partition=0,
                offset=5,
                key=b"u1",
                value=b"{",
                error=ValueError("invalid JSON"),
                failed_at=RECEIVED,
                consumer_group="profile",
            ).model_dump_json()
        )
    ],
}


def _validator(schema_file: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_samples_match_model_and_json_schema(topic: str) -> None:
    payload = PAYLOADS[topic]
    validator = _validator(payload.schema_file)
    for sample in SAMPLES[topic]:
        decoded = payload.adapter.validate_python(sample)
        serialised = json.loads(payload.adapter.dump_json(decoded))
        validator.validate(serialised)


def test_every_topic_has_a_payload_and_sample() -> None:
    assert set(PAYLOADS) == {spec.name for spec in TOPICS}
    covered = {PAYLOADS[topic].schema_file for topic in SAMPLES}
    assert covered == {payload.schema_file for payload in PAYLOADS.values()}


def test_json_schema_refuses_what_the_model_refuses() -> None:
    validator = _validator("scores.v1.json")
    bad = {**SAMPLES[SCORES][0], "value_tier": "gold", "churn_risk": 1.5}
    messages = {error.json_path for error in validator.iter_errors(bad)}
    assert messages == {"$.value_tier", "$.churn_risk"}


def test_segment_request_schemas_accept_sdk_bodies() -> None:
    event_schema = _validator("segment.event.json")
    batch_schema = _validator("segment.batch.json")
    order = {k: v for k, v in RAW.items() if k not in ("userId", "writeKey")} | {"userId": "42"}
    page = {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"path": "/"}}
    event_schema.validate(order)
    event_schema.validate(page)
    batch_schema.validate({"batch": [order, page], "sentAt": "2024-05-01T12:00:00Z"})
    generic = {"type": "track", "userId": "u1", "event": "Video Played", "properties": {}}
    event_schema.validate(generic)
    assert not event_schema.is_valid({**order, "properties": {"order_id": "o1"}})
    assert not event_schema.is_valid({"type": "track", "event": "Clicked"})  # no identity
    assert not event_schema.is_valid({"type": "alias", "anonymousId": "a", "previousId": "b"})

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.ingest.domain.intake import (
    BatchTooLargeError,
    CredentialError,
    IntakeRules,
    authorization_scheme,
    basic_write_key,
    body_write_key,
)
from services.ingest.domain.keys import hash_write_key, key_hint, new_write_key

RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = IntakeRules(max_event_bytes=32 * 1024, max_expanded_batch_bytes=2000 * 1024)


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_write_key_from_basic_auth_or_body() -> None:
    assert basic_write_key(_basic("wk_abc")) == "wk_abc"
    assert basic_write_key(_basic("wk_abc", "ignored")) == "wk_abc"
    assert basic_write_key("basic  " + _basic("wk_abc")[6:]) == "wk_abc"
    assert basic_write_key(None) is None
    assert basic_write_key("Bearer wk_abc") is None
    assert body_write_key({"writeKey": "wk_body"}) == "wk_body"
    assert body_write_key({"writeKey": ""}) is None
    assert body_write_key({"writeKey": 42}) is None
    assert body_write_key({}) is None
    assert authorization_scheme("Bearer x") == "Bearer"
    assert authorization_scheme("  ") is None


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("Basic !!!", "base64"),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), "base64"),
        ("Basic \u00e9\u00e9", "base64"),  # the bytes 0xE9 0xE9, read as Latin-1
        ("Basic", "missing"),
        ("Basic   ", "missing"),
        (_basic(""), "username"),
        (_basic("", "wk_in_the_password"), "username"),
    ],
)
def test_an_unusable_basic_header_says_what_is_wrong(header: str, says: str) -> None:
    with pytest.raises(CredentialError, match=says) as refused:
        basic_write_key(header)
    assert str(refused.value).startswith("Authorization header: ")


def test_write_keys_are_random_and_stored_as_hashes() -> None:
    first, second = new_write_key(), new_write_key()
    assert first != second
    assert first.startswith("wk_")
    assert len(hash_write_key(first)) == 64
    assert hash_write_key(first) != first
    assert key_hint(first) == first[:7] + "…"


def _take(events: list[Any], event_type: Any = None) -> Any:
    return RULES.take(events, event_type=event_type, source_id="src_1", received_at=RECEIVED)


def test_single_event_is_stamped_with_source_time_and_message_id() -> None:
    intake = _take([{"userId": "u1", "event": "Clicked", "writeKey": "wk_x"}], "track")
    [touchpoint] = intake.accepted
    assert touchpoint.source_id == "src_1"
    assert touchpoint.customer_key == "u1"
    assert touchpoint.received_at == RECEIVED
    assert touchpoint.timestamp == RECEIVED
    assert touchpoint.message_id
    assert b"wk_x" not in touchpoint.to_json()


def test_the_clock_skew_of_the_client_is_corrected() -> None:
    event = {
        "userId": "u1",
        "event": "Clicked",
        "originalTimestamp": "2026-11-22T13:00:00Z",  # the client's clock is an hour fast
        "sentAt": "2026-11-22T13:00:10Z",
    }
    [touchpoint] = _take([event], "track").accepted
    assert touchpoint.timestamp == RECEIVED - timedelta(seconds=10)


def test_batch_inherits_sent_at_and_context_and_reports_rejections_by_index() -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "u1", "originalTimestamp": "2026-11-22T11:59:00Z"},
            {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}},
            {"type": "bogus", "userId": "u1"},
        ],
        "sentAt": "2026-11-22T11:59:30Z",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    }
    intake = RULES.take_batch(body, source_id="src_1", received_at=RECEIVED)
    [identify] = intake.accepted
    assert identify.timestamp == RECEIVED - timedelta(seconds=30)
    assert identify.event.context is not None
    assert [r.index for r in intake.rejections] == [1, 2]
    order_fields = {e["field"] for e in intake.rejections[0].errors}
    assert "properties.order_id" in order_fields
    assert intake.rejections[1].errors[0]["field"] == "type"
    assert len(intake.rejected_records) == 2
    assert {r.reason for r in intake.rejected_records} == {"validation_failed"}


def test_an_event_over_the_size_limit_is_rejected_with_the_limit_named() -> None:
    big = {"type": "track", "userId": "u", "event": "Big", "properties": {"x": "y" * 40_000}}
    intake = RULES.take_batch({"batch": [big]}, source_id="src_1", received_at=RECEIVED)
    [rejection] = intake.rejections
    assert rejection.reason == "event_too_large"
    assert "32768 bytes (32 KB) per event" in rejection.message
    assert intake.rejected_records[0].payload_truncated


def _deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_events_nested_past_the_depth_limit_are_rejected_never_raised() -> None:
    # 300 levels: deeper than orjson encodes (254), which once made a 500.
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "Ok", "messageId": "ok"},
            {"type": "track", "userId": "u", "event": "Deep", "messageId": "deep-65"},
            {"type": "track", "userId": "u", "event": "Deep", "messageId": "deep-300"},
        ],
    }
    body["batch"][1]["properties"] = _deep(65)
    body["batch"][2]["properties"] = _deep(300)
    intake = RULES.take_batch(body, source_id="src_1", received_at=RECEIVED)
    assert [t.message_id for t in intake.accepted] == ["ok"]
    assert [(r.index, r.message_id) for r in intake.rejections] == [(1, "deep-65"), (2, "deep-300")]
    for rejection in intake.rejections:
        assert rejection.errors == [
            {
                "field": "properties",
                "message": "must not nest objects and arrays more than 64 levels deep",
            }
        ]
    # The record of the unencodable one keeps the event, cut at the limit.
    cut = orjson.loads(intake.rejected_records[1].payload)
    assert cut["messageId"] == "deep-300"
    assert orjson.dumps(cut).count(b"{") == 1 + 64  # the event, then 64 levels of properties
    assert "…" in intake.rejected_records[1].payload


def test_a_nul_character_is_rejected_naming_the_field() -> None:
    event = {"userId": "u1", "event": "Note", "properties": {"text": "a\x00b"}}
    intake = _take([event], "track")
    assert intake.accepted == []
    [rejection] = intake.rejections
    assert rejection.errors == [
        {"field": "properties.text", "message": "must not contain a NUL character (\\u0000)"}
    ]


def test_a_batch_context_copied_into_every_item_is_bounded_by_the_expanded_size() -> None:
    items = [{"type": "track", "userId": "u", "event": "Tick"} for _ in range(200)]
    context = {"app": {"blob": "x" * 30_000}}  # 38 KB of body, 6 MB once copied into each
    with pytest.raises(BatchTooLargeError) as refused:
        RULES.take_batch(
            {"batch": items, "context": context}, source_id="src_1", received_at=RECEIVED
        )
    assert refused.value.status == 413
    assert "2048000 bytes (2000 KB)" in str(refused.value)
    assert "context" in str(refused.value)
    # The same context on a few items is within the limit; so is a batch-level sentAt on the
    # most events a body of the request limit can carry.
    few = RULES.take_batch(
        {"batch": items[:50], "context": context}, source_id="src_1", received_at=RECEIVED
    )
    assert len(few.accepted) == 50
    small = [{"type": "track", "userId": "u", "event": "x"} for _ in range(10_000)]
    assert len(orjson.dumps({"batch": small})) < 500 * 1024
    many = RULES.take_batch(
        {"batch": small, "sentAt": "2026-11-22T11:59:30.123Z", "integrations": {"All": True}},
        source_id="src_1",
        received_at=RECEIVED,
    )
    assert len(many.accepted) == 10_000

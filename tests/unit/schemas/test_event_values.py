"""The rules every JSON value in an event keeps: a bounded depth and no NUL character."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas import InvalidEvent, parse_event
from schemas._types import MAX_DEPTH
from schemas.parse import DEPTH_MESSAGE, NUL_KEY_MESSAGE, NUL_MESSAGE, value_errors
from schemas.topics.touchpoints_v1 import Touchpoint, stamp

RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def nested(levels: int) -> Any:
    """An object `levels` deep: nested(1) == {}."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def event(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Poked", **fields}


def both_ways(raw: dict[str, Any]) -> list[Any]:
    """value_errors with and without the encoded fast path: they must agree."""
    slow = value_errors(raw)
    fast = value_errors(raw, orjson.dumps(raw))
    assert fast == slow
    return slow


def test_the_limit_is_64_levels_under_any_field() -> None:
    assert MAX_DEPTH == 64
    assert both_ways(event(properties=nested(64), traits=[nested(63)])) == []
    for field in ("properties", "traits", "context", "integrations", "anything"):
        assert both_ways(event(**{field: nested(65)})) == [
            {"field": field, "message": DEPTH_MESSAGE}
        ]
    assert both_ways(event(properties={"list": [[[nested(62)]]]})) == [
        {"field": "properties", "message": DEPTH_MESSAGE}
    ]
    assert "64 levels" in DEPTH_MESSAGE


def test_the_walk_stops_at_the_limit_however_deep_the_value() -> None:
    # Deeper than Python's recursion limit: found without recursing that far.
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    assert value_errors(event(properties={"x": deep})) == [
        {"field": "properties", "message": DEPTH_MESSAGE}
    ]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"properties": {"note": "a\x00b"}}, "properties.note", NUL_MESSAGE),
        ({"properties": {"tags": ["ok", "\x00"]}}, "properties.tags[1]", NUL_MESSAGE),
        ({"userId": "u\x00"}, "userId", NUL_MESSAGE),
        ({"context": {"page": {"ti\x00tle": "x"}}}, "context.page", NUL_KEY_MESSAGE),
        ({"bad\x00key": 1}, "", NUL_KEY_MESSAGE),
    ],
)
def test_a_nul_character_is_refused_where_it_is(
    fields: dict[str, Any], field: str, message: str
) -> None:
    assert both_ways(event(**fields)) == [{"field": field, "message": message}]


def test_one_error_per_field_and_the_text_backslash_u0000_is_no_nul() -> None:
    raw = event(properties={"a": "\x00", "b": "\x00"}, traits=nested(70))
    assert both_ways(raw) == [
        {"field": "properties.a", "message": NUL_MESSAGE},
        {"field": "traits", "message": DEPTH_MESSAGE},
    ]
    assert both_ways(event(properties={"path": "C:\\u0000"})) == []


def test_parse_event_refuses_them_with_the_field_errors() -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(event(properties={"note": "\x00"}))
    assert refused.value.errors == [{"field": "properties.note", "message": NUL_MESSAGE}]
    raw = event(properties=nested(65))
    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw, encoded=orjson.dumps(raw))
    assert refused.value.errors == [{"field": "properties", "message": DEPTH_MESSAGE}]


def test_what_parse_event_accepts_at_the_limit_a_consumer_decodes() -> None:
    raw = event(properties=nested(MAX_DEPTH), context={"app": [nested(MAX_DEPTH - 2)]})
    touchpoint = stamp(parse_event(raw), received_at=RECEIVED, source_id="src_1")
    assert Touchpoint.from_json(touchpoint.to_json()) == touchpoint
    assert Touchpoint.model_validate_json(touchpoint.to_json()) == touchpoint

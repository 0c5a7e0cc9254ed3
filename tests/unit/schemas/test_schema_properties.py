"""Properties that must hold for any input: no crash on garbage, skew-free timestamps."""

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import FieldError, InvalidEvent, corrected_timestamp, parse_event
from schemas.events import TYPED_EVENTS

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
keys = st.sampled_from(
    [
        "type",
        "event",
        "userId",
        "anonymousId",
        "previousId",
        "groupId",
        "messageId",
        "timestamp",
        "sentAt",
        "originalTimestamp",
        "context",
        "properties",
        "traits",
    ]
)
types = st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "x"])
names = st.sampled_from([*TYPED_EVENTS, "Other"])


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = draw(st.dictionaries(keys, json_values, max_size=8))
    if draw(st.booleans()):
        raw["type"] = draw(types)
    if draw(st.booleans()):
        raw["event"] = draw(names)
    if draw(st.booleans()):
        raw["userId"] = "u1"
    return raw


@settings(max_examples=300, deadline=None)
@given(near_events() | json_values)
def test_any_input_is_an_event_or_an_invalid_event(raw: Any) -> None:
    # Rule 6: bad input is a clear 4xx, never a crash.
    errors: list[FieldError] = []
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        errors = exc.errors or [{"field": "", "message": ""}]
    assert all(isinstance(e["field"], str) and e["message"] for e in errors)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
skews = st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650))
delays = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=6))


@given(instants, delays, delays, skews)
def test_corrected_timestamp_cancels_any_client_clock_skew(
    happened: datetime, queued: timedelta, transit: timedelta, skew: timedelta
) -> None:
    received = happened + queued + transit
    when = corrected_timestamp(
        received_at=received,
        sent_at=happened + queued + skew,
        original_timestamp=happened + skew,
        timestamp=None,
    )
    # Exact up to the network transit time, whatever the client's clock says.
    assert when == happened + transit
    assert when <= received

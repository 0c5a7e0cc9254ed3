"""Quiet hours and times of day across daylight-saving changes, caps, conditions, and the state's
JSON round trip, as properties."""

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.journey_v1 import Condition
from services.notify.domain import Cap, CustomerState, Entry, Fact, QuietHours, Run
from services.notify.domain.conditions import holds
from services.notify.domain.policy import (
    cap_exceeded,
    in_quiet_hours,
    next_wall_time,
    quiet_until,
)
from services.notify.domain.state import ConsentFact

PROPERTIES = settings(max_examples=300, deadline=None)
ZONES = st.sampled_from(
    (
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Santiago",  # clocks change at midnight: some days have no 00:00
        "Australia/Lord_Howe",  # a 30-minute change
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/St_Johns",
    )
)
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
WALL = st.builds(time, st.integers(0, 23), st.sampled_from((0, 15, 30, 45)))


@PROPERTIES
@given(instant=INSTANTS, wall=WALL, name=ZONES)
def test_the_next_time_of_day_is_the_first_at_or_after(
    instant: datetime, wall: time, name: str
) -> None:
    tz = ZoneInfo(name)
    found = next_wall_time(instant, wall, tz)
    assert instant <= found < instant + timedelta(hours=26)
    local = found.astimezone(tz)
    if local.time() != wall:  # only on a day the clocks skip that time: just after the gap
        skipped = datetime.combine(local.date(), wall, tzinfo=tz)
        assert skipped.astimezone(UTC).astimezone(tz).time() != wall
        assert (
            timedelta(0)
            < local.replace(tzinfo=None) - skipped.replace(tzinfo=None)
            <= timedelta(hours=1)
        )
    # Nothing earlier in between has that wall time (checked every 15 minutes).
    probe = instant.replace(minute=instant.minute - instant.minute % 15, second=0, microsecond=0)
    if probe < instant:
        probe += timedelta(minutes=15)
    while probe < found:
        assert probe.astimezone(tz).time() != wall, probe
        probe += timedelta(minutes=15)


@PROPERTIES
@given(instant=INSTANTS, name=ZONES, start=WALL, end=WALL)
def test_quiet_hours_delay_to_the_first_allowed_moment(
    instant: datetime, name: str, start: time, end: time
) -> None:
    tz = ZoneInfo(name)
    quiet = QuietHours(start, end)
    later = quiet_until(instant, tz, quiet)
    if later is None:
        assert not in_quiet_hours(instant, tz, quiet)
        return
    assert start != end
    assert in_quiet_hours(instant, tz, quiet)
    assert later > instant
    assert not in_quiet_hours(later, tz, quiet), later.astimezone(tz)
    assert later - instant <= timedelta(hours=25)
    # Quiet all the way: the send is delayed to the next allowed moment, not past it.
    step = (later - instant) / 16
    for n in range(16):
        assert in_quiet_hours(instant + step * n, tz, quiet)


def test_quiet_hours_are_local_and_may_span_midnight() -> None:
    paris = ZoneInfo("Europe/Paris")
    night = QuietHours(time(21), time(8))
    assert in_quiet_hours(datetime(2026, 7, 1, 19, 30, tzinfo=UTC), paris, night)  # 21:30
    assert not in_quiet_hours(datetime(2026, 7, 1, 6, 0, tzinfo=UTC), paris, night)  # 08:00
    lunch = QuietHours(time(12), time(14))
    assert in_quiet_hours(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), paris, lunch)
    assert not in_quiet_hours(datetime(2026, 7, 1, 13, 0, tzinfo=UTC), paris, None)
    spring = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, an hour before the change
    assert quiet_until(spring, paris, night) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08 CEST


@given(
    sends=st.lists(INSTANTS, max_size=8),
    now=INSTANTS,
    count=st.integers(1, 3),
    hours=st.integers(1, 200),
)
def test_a_cap_counts_sends_closer_than_its_window_on_either_side(
    sends: list[datetime], now: datetime, count: int, hours: int
) -> None:
    cap = Cap(count, timedelta(hours=hours))
    near = [s for s in sends if abs(now - s) < cap.window]
    assert (cap_exceeded(sends, now, (cap,)) == cap) == (len(near) >= count)


PROFILE = {
    "loyalty": {"points_balance": 500},
    "commerce": {"net_revenue": "19.90", "currency": "EUR"},
    "traits": {"plan": "pro", "vip": True, "tags": []},
    "consent": {"email_marketing": "opted_in"},
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("profile.loyalty.points_balance", "gte", 500, True),
        ("profile.loyalty.points_balance", "gt", 500, False),
        ("profile.commerce.net_revenue", "eq", 19.9, True),  # money text vs a number: exact
        ("profile.commerce.net_revenue", "lt", 20, True),
        ("profile.commerce.currency", "in", ["EUR", "USD"], True),
        ("profile.commerce.currency", "not_in", ["EUR"], False),
        ("profile.traits.plan", "eq", "pro", True),
        ("profile.traits.plan", "gt", 1, False),  # text is not a number
        ("profile.traits.vip", "eq", True, True),
        ("profile.traits.vip", "eq", 1, False),  # true is not 1
        ("profile.traits.tags", "exists", None, False),  # empty counts as absent
        ("profile.traits.tags", "missing", None, True),
        ("profile.traits.nothing", "eq", "x", False),  # missing: eq false, ne true
        ("profile.traits.nothing", "ne", "x", True),
        ("profile.traits.nothing", "not_in", ["x"], True),
        ("profile.traits.nothing", "lt", 1, False),
        ("scores.churn_risk", "gt", 0.5, False),  # no scores yet: missing
        ("profile.consent.email_marketing", "eq", "opted_in", True),
    ],
)
def test_conditions(field: str, op: str, value: Any, expected: bool) -> None:
    condition = Condition.model_validate({"field": field, "op": op, "value": value})
    assert holds(condition, {"profile": PROFILE, "scores": None}) is expected


AWARE = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
TEXT = st.text(min_size=1, max_size=12)
JSON_SCALAR = st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT
RUNS = st.builds(
    Run,
    journey=TEXT,
    run_key=TEXT,
    trigger_event_id=TEXT,
    trigger_type=TEXT,
    trigger_at=AWARE,
    trigger=st.dictionaries(TEXT, JSON_SCALAR | st.lists(JSON_SCALAR, max_size=3), max_size=4),
    entered_at=AWARE,
    step=st.integers(0, 20),
    since=AWARE,
    wake_at=AWARE,
)
STATES = st.builds(
    CustomerState,
    runs=st.lists(RUNS, max_size=3).map(tuple),
    entries=st.lists(st.builds(Entry, TEXT, st.text(max_size=8), AWARE, TEXT), max_size=3).map(
        tuple
    ),
    facts=st.lists(
        st.builds(Fact, TEXT, TEXT, AWARE, st.dictionaries(TEXT, JSON_SCALAR, max_size=4)),
        max_size=3,
    ).map(tuple),
    marketing_sends=st.lists(AWARE, max_size=4).map(tuple),
    consent=st.none()
    | st.builds(ConsentFact, st.sampled_from(("unknown", "opted_in", "opted_out")), AWARE, TEXT),
    erased_at=st.none() | AWARE,
)


@PROPERTIES
@given(STATES)
def test_a_state_reads_back_from_its_json(state: CustomerState) -> None:
    text = json.dumps(state.to_json())
    assert CustomerState.from_json(json.loads(text)) == state

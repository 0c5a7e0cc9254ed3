"""The demo storefront's shoppers: valid against the event contract, deterministic per seed,
and covering every channel and event the charts and journeys read."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import TYPED_EVENTS, parse_event
from services.demo.ingest_client import batches
from services.demo.storefront import (
    CHANNELS,
    Shape,
    arrival,
    history,
    live_session,
    shopper_events,
    spend_plan,
)
from services.scoring.spend_csv import CHANNELS as SPEND_CHANNELS

END = datetime(2026, 3, 1, tzinfo=UTC)
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "jsonschema"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), shoppers=st.integers(1, 40))
def test_every_event_of_any_seed_is_valid_against_the_contract(seed: int, shoppers: int) -> None:
    shape = Shape(seed, shoppers, 120, END)
    events = list(history(shape))
    for event in events:
        parse_event(event)  # raises InvalidEvent naming the field
        assert event["timestamp"] <= "2026-03-01T00:00:00.000Z"
        assert event["timestamp"] >= "2025-11-01T00:00:00.000Z"
    ids = [event["messageId"] for event in events]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_requests_the_demo_sends_match_the_published_batch_schema(seed: int) -> None:
    schema = json.loads((SCHEMAS / "segment.batch.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for batch in batches(history(Shape(seed, 60, 180, END))):
        validator.validate({"batch": json.loads(batch.body), "sentAt": "2026-03-01T00:00:00Z"})
    live = [live_session(Shape(seed, 60, 180, END), "r", n, END) for n in range(10)]
    validator.validate({"batch": [event for session in live for event in session]})


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_the_same_seed_gives_the_same_events_and_another_seed_others(seed: int) -> None:
    shape = Shape(seed, 30, 90, END)
    assert list(history(shape)) == list(history(shape))
    assert list(history(shape)) != list(history(Shape(seed + 1, 30, 90, END)))


def test_a_shoppers_history_does_not_depend_on_how_many_others_are_simulated() -> None:
    # Arrival times spread over the shoppers, so compare what they do, not when.
    few, many = Shape(3, 10, 90, END), Shape(3, 11, 90, END)
    assert arrival(few, 4)[0].channel == arrival(many, 4)[0].channel
    assert arrival(few, 4)[0].anonymous_id == arrival(many, 4)[0].anonymous_id


def test_a_thousand_shoppers_exercise_every_channel_and_event_the_product_reads() -> None:
    shape = Shape(1, 1000, 180, END)
    events = list(history(shape))
    names = Counter(event.get("event", event["type"]) for event in events)
    promised = set(TYPED_EVENTS) - {"Product Removed"}
    assert promised <= set(names), promised - set(names)
    assert {"identify", "page", "Loyalty Points Redeemed"} <= set(names)
    channels = Counter(arrival(shape, i)[0].channel.name for i in range(shape.shoppers))
    assert set(channels) == {channel.name for channel in CHANNELS}
    identified = [event["traits"] for event in events if event["type"] == "identify"]
    consent = Counter(traits["email_marketing_consent"] for traits in identified)
    assert consent[True] > 0
    assert consent[False] > 0
    campaigns = {e["context"]["campaign"]["medium"] for e in events if "campaign" in e["context"]}
    assert {"cpc", "social", "email", "referral", "affiliate"} <= campaigns


def test_buyers_come_back_as_the_purchase_process_says_and_some_stop() -> None:
    shape = Shape(2, 1500, 365, END)
    orders_per_buyer = Counter(
        event["userId"] for event in history(shape) if event.get("event") == "Order Completed"
    )
    repeat = [count for count in orders_per_buyer.values() if count > 1]
    assert len(orders_per_buyer) > 300
    # Enough repeat buyers for the CLV fit (its minimum is 20), and not everyone repeats.
    assert 0.3 < len(repeat) / len(orders_per_buyer) < 0.8
    assert max(orders_per_buyer.values()) >= 6


def test_orders_are_priced_from_their_lines() -> None:
    for event in shopper_events(Shape(5, 50, 180, END), 7) + shopper_events(
        Shape(5, 50, 180, END), 8
    ):
        if event.get("event") == "Order Completed":
            p = event["properties"]
            lines = sum(line["price"] * line["quantity"] for line in p["products"])
            assert round(lines, 2) == p["subtotal"]
            assert p["revenue"] == round(p["subtotal"] - p["discount"], 2)


def test_live_sessions_happen_now_and_differ_between_runs() -> None:
    shape = Shape(1, 100, 30, END)
    now = END + timedelta(hours=5)
    first = [live_session(shape, "run-a", n, now) for n in range(20)]
    again = [live_session(shape, "run-b", n, now) for n in range(20)]
    for session in first:
        for event in session:
            parse_event(event)
            assert now - timedelta(minutes=5) <= datetime.fromisoformat(event["timestamp"]) <= now
    ids = {e["messageId"] for s in first for e in s}
    assert not ids & {e["messageId"] for s in again for e in s}
    assert len(ids) == sum(len(s) for s in first)


def test_spend_is_set_for_paid_channels_per_month_in_spend_files_terms() -> None:
    rows = spend_plan(Shape(1, 2000, 180, END))
    assert {row.channel for row in rows} == {"paid_search", "social", "email", "affiliate"}
    assert {row.channel for row in rows} <= SPEND_CHANNELS
    # The 180 days before 1 March start on 2 September.
    assert {row.month for row in rows} == {f"2025-{m:02d}" for m in range(9, 13)} | {
        "2026-01",
        "2026-02",
    }
    assert all(row.amount > 0 and row.currency == "EUR" for row in rows)

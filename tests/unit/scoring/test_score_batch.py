"""The scoring use case over the in-memory store: published when changed, once, and forgotten
on erasure."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from schemas.topics import LIFECYCLE, SCORES
from schemas.topics.lifecycle_v1 import CustomerErased, OrderCompleted, ProfilesMerged
from schemas.topics.profiles_v1 import Commerce, ProfileSnapshot
from services.runtime.messages import OutboxMessage
from services.scoring.domain.refit import refit
from services.scoring.domain.score import unfitted_model
from services.scoring.domain.standing import StandingRules
from services.scoring.score_batch import ProfileUpdate, ScoreBatch
from tests.unit.scoring.ledger_orders import order_completed
from tests.unit.scoring.memory_store import MemoryScoringStore

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def snapshot(customer_id: str, revision: int, revenue: str = "0") -> ProfileUpdate:
    commerce = Commerce(currency="EUR", revenue_by_currency={"EUR": Decimal(revenue)})
    return ProfileUpdate(
        customer_id,
        ProfileSnapshot(
            customer_id=customer_id, revision=revision, updated_at=NOW, commerce=commerce
        ),
    )


def completed(customer_id: str, order_id: str, revenue: str, days_ago: int = 1) -> OrderCompleted:
    return OrderCompleted(
        type="order_completed",
        event_id=f"e-{order_id}",
        customer_id=customer_id,
        occurred_at=NOW - timedelta(days=days_ago),
        order_id=order_id,
        revenue=Decimal(revenue),
        currency="EUR",
    )


def on(topic: str, messages: list[OutboxMessage]) -> list[OutboxMessage]:
    return [m for m in messages if m.topic == topic]


async def test_a_customer_is_published_when_the_record_changes_and_only_then() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    first = await score(store, [snapshot("c1", 1, "30"), completed("c1", "o1", "30")], NOW)
    [record] = on(SCORES, first)
    assert orjson.loads(record.value or b"")["lifecycle_stage"] == "acquisition"
    stages = [orjson.loads(m.value or b"")["type"] for m in on(LIFECYCLE, first)]
    assert stages.count("stage_changed") == 1
    # The same facts again (a redelivery, a newer profile revision with the same figures):
    # nothing to publish.
    assert await score(store, [snapshot("c1", 2, "30"), completed("c1", "o1", "30")], NOW) == []
    # A new order changes the record: published again.
    again = await score(store, [completed("c1", "o2", "20")], NOW)
    assert len(on(SCORES, again)) == 1
    assert store.scores_by_id["c1"].revision == 2


async def test_an_older_profile_revision_changes_nothing() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("c1", 5, "50")], NOW)
    assert await score(store, [snapshot("c1", 4, "10")], NOW) == []
    assert store.profiles_by_id["c1"].revision == 5


async def test_erasure_forgets_the_customer_and_publishes_one_tombstone() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("c1", 1, "30"), completed("c1", "o1", "30")], NOW)
    erased = CustomerErased(type="customer_erased", event_id="x", customer_id="c1", occurred_at=NOW)
    messages = await score(store, [ProfileUpdate("c1", None), erased], NOW)
    assert messages == [OutboxMessage(SCORES, b"c1", None)]
    assert "c1" not in store.orders_by_id
    assert await score(store, [erased], NOW) == []  # said twice, done once


async def test_a_merge_moves_the_orders_to_the_survivor() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("anon", 1, "12"), completed("anon", "o1", "12", days_ago=5)], NOW)
    merged = ProfilesMerged(
        type="profiles_merged",
        event_id="m",
        customer_id="user",
        occurred_at=NOW,
        absorbed_customer_ids=["anon"],
    )
    messages = await score(store, [snapshot("user", 1, "12"), merged], NOW)
    assert OutboxMessage(SCORES, b"anon", None) in messages
    assert list(store.orders_by_id["user"]) == ["o1"]
    survivor = orjson.loads(next(m.value for m in on(SCORES, messages) if m.key == b"user") or b"")
    assert survivor["ladder_step"] == "customer"


async def test_orders_keep_their_priced_lines_and_a_refit_turns_them_into_upgrades() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    yesterday = NOW - timedelta(days=1)
    tents = {"c1": ("tent-basic", "100"), "c2": ("tent-trek", "160"), "c3": ("tent-lite", "110")}
    events: list[ProfileUpdate | OrderCompleted] = []
    for customer_id, (product, price) in tents.items():
        events.append(snapshot(customer_id, 1, price))
        events.append(order_completed(customer_id, "o1", (product, "tents", price), at=yesterday))
    first = await score(store, events, NOW)
    assert all(orjson.loads(m.value or b"")["upgrades"] == [] for m in on(SCORES, first))
    [kept] = store.orders_by_id["c2"].values()
    assert [(line.product_id, line.unit_price) for line in kept.lines] == [
        ("tent-trek", Decimal(160))
    ]

    score.model = refit(
        await store.orders(tents), as_of=NOW.date(), version=1, rules=StandingRules()
    )
    rescored = await score.rescore(store, sorted(tents), NOW)
    upgrades = {m.key: orjson.loads(m.value or b"")["upgrades"] for m in on(SCORES, rescored)}
    # 110 is not clearly above the 100 c1 paid; 160 is. Nothing sells above 160.
    assert upgrades[b"c1"] == ["tent-trek"]
    assert upgrades[b"c3"] == ["tent-trek"]
    assert upgrades[b"c2"] == []

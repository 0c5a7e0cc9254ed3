"""The scoring use case over the in-memory store: published when changed, once, and forgotten
on erasure."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from schemas.topics import LIFECYCLE, SCORES
from schemas.topics.lifecycle_v1 import CustomerErased, OrderCompleted, ProfilesMerged
from schemas.topics.profiles_v1 import Commerce, ProfileSnapshot
from services.runtime.messages import OutboxMessage
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.refit import refit
from services.scoring.domain.score import unfitted_model
from services.scoring.domain.standing import StandingRules
from services.scoring.score_batch import Item, ProfileUpdate, ScoreBatch
from tests.unit.scoring.ledger_orders import order_completed
from tests.unit.scoring.memory_store import MemoryScoringStore

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def snapshot(
    customer_id: str, revision: int, revenue: str = "0", at: datetime = NOW
) -> ProfileUpdate:
    commerce = Commerce(currency="EUR", revenue_by_currency={"EUR": Decimal(revenue)})
    return ProfileUpdate(
        customer_id,
        ScoredProfile.of(
            ProfileSnapshot(
                customer_id=customer_id, revision=revision, updated_at=at, commerce=commerce
            )
        ),
    )


def completed(
    customer_id: str, order_id: str, revenue: str, days_ago: float = 1, at: datetime | None = None
) -> OrderCompleted:
    return OrderCompleted(
        type="order_completed",
        event_id=f"e-{order_id}",
        customer_id=customer_id,
        occurred_at=at or NOW - timedelta(days=days_ago),
        order_id=order_id,
        revenue=Decimal(revenue),
        currency="EUR",
    )


def erased(customer_id: str, at: datetime = NOW) -> CustomerErased:
    return CustomerErased(
        type="customer_erased", event_id=f"x-{at}", customer_id=customer_id, occurred_at=at
    )


def merge(absorbed: str, *, into: str) -> ProfilesMerged:
    return ProfilesMerged(
        type="profiles_merged",
        event_id=f"m-{absorbed}-{into}",
        customer_id=into,
        occurred_at=NOW,
        absorbed_customer_ids=[absorbed],
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
    messages = await score(store, [ProfileUpdate("c1", None), erased("c1")], NOW)
    assert messages == [OutboxMessage(SCORES, b"c1", None)]
    assert "c1" not in store.orders_by_id
    assert await score(store, [erased("c1")], NOW) == []  # said twice, done once


async def test_erasure_forgets_the_email_clicks_up_to_it_and_a_merge_moves_them() -> None:
    before, after = NOW - timedelta(days=2), NOW + timedelta(hours=1)
    store = MemoryScoringStore(clicks_by_id={"c1": [before, after], "anon": [before]})
    score = ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [erased("c1")], NOW)
    assert store.clicks_by_id["c1"] == [after]  # a click after the erasure: they came back
    await score(store, [merge("anon", into="c1")], NOW)
    assert store.clicks_by_id == {"c1": [after, before]}


async def test_a_merge_moves_the_orders_to_the_survivor() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("anon", 1, "12"), completed("anon", "o1", "12", days_ago=5)], NOW)
    messages = await score(store, [snapshot("user", 1, "12"), merge("anon", into="user")], NOW)
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


# Erasure. The profile service erases at ERASED and says so on profiles.v1 (a tombstone) and on
# lifecycle.v1 (customer_erased); scoring consumes the two apart, so news of the customer from
# before the erasure can arrive after it.
ERASED = NOW - timedelta(hours=2)
BEFORE, AFTER, LATER = ERASED - timedelta(hours=1), ERASED + timedelta(minutes=5), NOW


def published(messages: list[OutboxMessage], customer_id: str) -> list[dict[str, object] | None]:
    return [
        None if m.value is None else orjson.loads(m.value)
        for m in on(SCORES, messages)
        if m.key == customer_id.encode()
    ]


async def _erased_customer() -> tuple[MemoryScoringStore, ScoreBatch]:
    """c1 ordered (o1), was scored, and was erased at ERASED: both announcements processed."""
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("c1", 3, "30", at=BEFORE), completed("c1", "o1", "30", at=BEFORE)])
    assert await score(store, [ProfileUpdate("c1", None), erased("c1", ERASED)], LATER)
    return store, score


async def test_an_order_from_before_the_erasure_that_arrives_after_it_is_dropped() -> None:
    store, score = await _erased_customer()
    late = completed("c1", "o-late", "15", at=ERASED)  # at the erasure is before it
    assert await score(store, [late], LATER) == []
    assert store.orders_by_id == {}
    assert store.erased_at == {"c1": ERASED}


async def test_the_race_of_the_two_topics_leaves_nothing_of_the_erased_customer() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("c1", 3, "30", at=BEFORE), completed("c1", "o1", "30", at=BEFORE)])
    # profiles.v1 runs ahead: the tombstone first, then lifecycle.v1 brings an order placed before
    # the erasure, then the erasure. The order is never scored (no profile) and goes with it.
    assert published(await score(store, [ProfileUpdate("c1", None)], LATER), "c1") == [None]
    assert await score(store, [completed("c1", "o2", "20", at=BEFORE)], LATER) == []
    assert await score(store, [erased("c1", ERASED)], LATER) == []
    assert store.orders_by_id == {}
    assert store.profiles_by_id == {}


async def test_a_snapshot_from_before_the_erasure_that_arrives_after_it_is_dropped() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [erased("c1", ERASED)], LATER)  # lifecycle.v1 ran ahead
    assert await score(store, [snapshot("c1", 4, "30", at=BEFORE)], LATER) == []
    assert store.profiles_by_id == {}


async def test_a_customer_who_comes_back_after_the_erasure_is_scored_afresh() -> None:
    store, score = await _erased_customer()
    back: list[Item] = [snapshot("c1", 1, "20", at=AFTER), completed("c1", "o2", "20", at=AFTER)]
    [record] = published(await score(store, back, LATER), "c1")
    assert record is not None
    assert record["clv_historical"] == "20"
    assert record["ladder_step"] == "customer"  # one order: the one after the erasure
    assert list(store.orders_by_id["c1"]) == ["o2"]
    # A straggler from before the erasure changes nothing for the new customer.
    assert await score(store, [completed("c1", "o-late", "15", at=BEFORE)], LATER) == []


async def test_an_erasure_announced_after_the_customer_came_back_keeps_what_came_after() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("c1", 3, "30", at=BEFORE), completed("c1", "o1", "30", at=BEFORE)])
    # profiles.v1 runs far ahead: the tombstone, then the profile of the customer come back.
    await score(store, [ProfileUpdate("c1", None)], LATER)
    await score(store, [snapshot("c1", 1, "20", at=AFTER)], LATER)
    # lifecycle.v1 catches up: the erasure, then the order placed after it.
    messages = await score(store, [erased("c1", ERASED), completed("c1", "o2", "20", at=AFTER)])
    assert store.profiles_by_id["c1"].revision == 1
    assert list(store.orders_by_id["c1"]) == ["o2"]
    [record] = published(messages, "c1")  # rescored without the erased order; no tombstone
    assert record is not None
    assert record["ladder_step"] == "customer"


async def test_a_tombstone_and_a_new_profile_in_one_batch_leave_the_new_profile() -> None:
    store, score = await _erased_customer()
    old, new = snapshot("c1", 3, "30", at=BEFORE), snapshot("c1", 1, "20", at=AFTER)
    messages = await score(store, [old, ProfileUpdate("c1", None), new], LATER)
    assert store.profiles_by_id["c1"].revision == 1
    [record] = published(messages, "c1")
    assert record is not None
    assert record["clv_historical"] == "20"


async def test_erased_again_the_later_erasure_counts() -> None:
    store, score = await _erased_customer()
    second = ERASED + timedelta(hours=1)
    await score(store, [completed("c1", "o2", "20", at=AFTER), erased("c1", second)], LATER)
    await score(store, [erased("c1", ERASED)], LATER)  # the first one, delivered again
    assert store.erased_at == {"c1": second}
    assert store.orders_by_id == {}  # o2 came after the first erasure, before the second


async def test_the_guest_order_reaches_the_survivor_when_the_guest_tombstone_comes_first() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    await score(store, [snapshot("anon", 1, "12"), completed("anon", "o1", "12")])
    # The merge sends a tombstone for the guest on profiles.v1 and profiles_merged on
    # lifecycle.v1; the tombstone ends the guest's profile, not their orders.
    await score(store, [ProfileUpdate("anon", None), snapshot("user", 1, "12")])
    await score(store, [merge("anon", into="user")], NOW)
    assert list(store.orders_by_id) == ["user"]
    assert list(store.orders_by_id["user"]) == ["o1"]
    assert store.scores_by_id["user"].record["ladder_step"] == "customer"


# The kept transitions (scoring.transitions): each announced change once, moved by a merge,
# forgotten with the customer.


def announced(messages: list[OutboxMessage]) -> set[str]:
    return {orjson.loads(m.value or b"")["event_id"] for m in on(LIFECYCLE, messages)}


async def test_every_announced_transition_is_kept_once() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    first = await score(store, [snapshot("c1", 1, "30"), completed("c1", "o1", "30")], NOW)
    again = await score(store, [completed("c1", "o2", "20", days_ago=0.5)], NOW)
    kept = store.transitions_of("c1")
    assert {t.event_id for t in kept} == announced(first) | announced(again)
    assert ("lifecycle_stage", None, "acquisition") in {
        (t.dimension, t.from_segment, t.to_segment) for t in kept
    }
    # A redelivery changes no record, so it announces and keeps nothing new.
    await score(store, [completed("c1", "o2", "20", days_ago=0.5)], NOW)
    assert store.transitions_of("c1") == kept


async def test_a_merge_gives_the_absorbed_transitions_to_the_survivor() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    first = await score(store, [snapshot("anon", 1, "12"), completed("anon", "o1", "12")], NOW)
    merged = merge("anon", into="user")
    await score(store, [snapshot("user", 1, "12"), merged], NOW)
    assert store.transitions_of("anon") == []
    assert announced(first) <= {t.event_id for t in store.transitions_of("user")}


async def test_erasure_forgets_the_transitions_up_to_it_and_keeps_a_comeback() -> None:
    store, score = MemoryScoringStore(), ScoreBatch(StandingRules(), unfitted_model())
    before = NOW - timedelta(hours=3)
    await score(store, [snapshot("c1", 1, "30", at=before), completed("c1", "o1", "30")], before)
    assert store.transitions_of("c1")
    await score(store, [ProfileUpdate("c1", None), erased("c1", ERASED)], NOW)
    assert store.transitions_of("c1") == []
    # Back after the erasure: a new history, which a late announcement of it leaves alone.
    back = await score(store, [snapshot("c1", 2, "0", at=NOW)], NOW)
    await score(store, [erased("c1", ERASED)], NOW)
    assert {t.event_id for t in store.transitions_of("c1")} == announced(back) != set()

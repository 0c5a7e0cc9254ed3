"""The fold use case over the in-memory store: what a batch stores, folds and announces."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.topics import LIFECYCLE, PROFILES
from services.profile.domain import LoyaltyRule
from services.profile.domain.identity import customer_id_for, identity_hash
from services.profile.fold_batch import FoldBatch, LateLockError
from services.runtime.messages import OutboxMessage
from tests.unit.profile.factory import Events, at
from tests.unit.profile.memory_store import MemoryProfileStore

NOW = at(24)


def profiles(messages: list[OutboxMessage]) -> dict[str, Any]:
    """The last snapshot announced per customer id (None for a tombstone)."""
    return {
        m.key.decode(): orjson.loads(m.value) if m.value else None
        for m in messages
        if m.topic == PROFILES and m.key
    }


def signals(messages: list[OutboxMessage]) -> list[str]:
    return [orjson.loads(m.value)["type"] for m in messages if m.topic == LIFECYCLE and m.value]


async def test_a_batch_folds_its_events_and_announces_snapshot_and_signals() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    alice = Events("alice", "a-1")
    messages = await fold_batch(store, [alice.page(hours=0), alice.order("o-1", 30, hours=1)], NOW)
    alice_id = customer_id_for(("user", "alice"))
    snapshot = profiles(messages)[alice_id]
    assert snapshot["commerce"]["orders_count"] == 1
    assert Decimal(snapshot["commerce"]["net_revenue"]) == Decimal(30)
    assert snapshot["user_id"] == "alice"
    assert signals(messages)[:2] == ["first_order", "order_completed"]
    assert store.customers[alice_id].snapshot == messages[0].value.decode()  # type: ignore[union-attr]


async def test_redelivered_events_change_nothing() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    bob = Events("bob", None)
    batch = [bob.order("o-1", 10), bob.order("o-2", 5, hours=1)]
    await fold_batch(store, batch, NOW)
    revision = store.customers[customer_id_for(("user", "bob"))].revision
    assert await fold_batch(store, batch, NOW) == []
    assert store.customers[customer_id_for(("user", "bob"))].revision == revision


async def test_two_sources_sending_the_same_message_id_are_two_events() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    carol = Events("carol", None)
    web = carol.order("o-1", 10, message_id="same")
    # Another source (the mobile app, say) whose client happened to choose the same messageId.
    app = carol.order("o-2", 5, message_id="same").model_copy(update={"source_id": "src_2"})
    for batches in ([[web, app]], [[web], [app]], [[app], [web]]):
        store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
        for batch in batches:
            await fold_batch(store, batch, NOW)
        snapshot = orjson.loads(store.customers[customer_id_for(("user", "carol"))].snapshot)
        assert snapshot["commerce"]["orders_count"] == 2, batches
        assert len(store.touchpoints) == 2


async def test_identify_absorbs_the_anonymous_profile_and_announces_the_merge() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    anonymous = Events(None, "device-1")
    await fold_batch(store, [anonymous.page(hours=0), anonymous.order("o-1", 12, hours=1)], NOW)
    anonymous_id = customer_id_for(("anon", "device-1"))
    assert anonymous_id in store.customers

    dave = Events("dave", "device-1")
    messages = await fold_batch(store, [dave.identify({"email": "d@x.io"}, hours=2)], NOW)
    dave_id = customer_id_for(("user", "dave"))
    announced = profiles(messages)
    assert announced[anonymous_id] is None  # tombstone: compacted away
    assert announced[dave_id]["commerce"]["orders_count"] == 1
    assert announced[dave_id]["merged_customer_ids"] == [anonymous_id]
    assert "profiles_merged" in signals(messages)
    # The order was announced when the anonymous customer placed it, not again on the merge.
    assert "order_completed" not in signals(messages)
    assert store.merged == {anonymous_id: dave_id}


async def test_referral_revenue_is_summed_per_currency_never_across() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    referrer = Events("rita", None)
    await fold_batch(store, [referrer.order("o-r", 100, currency="EUR")], NOW)
    euro, dollar = Events("eve", None), Events("fay", None)
    code = {"referral_code": "RITA10", "referrer_id": "rita"}
    messages = await fold_batch(
        store,
        [
            euro.track("Referral Code Used", code),
            euro.order("o-e", 10.10, currency="EUR", hours=1),
            dollar.track("Referral Code Used", code),
            dollar.order("o-d", 20.20, currency="USD", hours=1),
        ],
        NOW,
    )
    rita = profiles(messages)[customer_id_for(("user", "rita"))]
    assert rita["referrals"]["referred_customers_count"] == 2
    by_currency = {c: Decimal(v) for c, v in rita["referrals"]["revenue_by_currency"].items()}
    assert by_currency == {"EUR": Decimal("10.10"), "USD": Decimal("20.20")}
    assert (rita["referrals"]["currency"], Decimal(rita["referrals"]["referred_revenue"])) == (
        "EUR",
        Decimal("10.10"),
    )


async def test_a_referred_customers_first_order_is_announced_to_the_referrer_once() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    await fold_batch(store, [Events("rita", None).order("o-r", 100)], NOW)
    eve = Events("eve", None)
    code = {"referral_code": "RITA10", "referrer_id": "rita"}
    first = await fold_batch(
        store, [eve.track("Referral Code Used", code), eve.order("o-e", 10, hours=1)], NOW
    )
    again = await fold_batch(store, [eve.order("o-e2", 12, hours=2)], NOW)
    thanks = [
        (m.key, orjson.loads(m.value))
        for m in first + again
        if m.topic == LIFECYCLE and m.value and b'"referral_converted"' in m.value
    ]
    rita_id, eve_id = customer_id_for(("user", "rita")), customer_id_for(("user", "eve"))
    [(key, event)] = thanks  # the first order only, on the referrer's key
    assert key == rita_id.encode()
    assert (event["customer_id"], event["referred_customer_id"], event["order_id"]) == (
        rita_id,
        eve_id,
        "o-e",
    )


async def test_a_sign_up_is_announced_once() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    sam = Events("sam", None)
    first = await fold_batch(store, [sam.track("Signed Up", {"type": "invited"})], NOW)
    again = await fold_batch(store, [sam.track("Signed Up", {}, hours=1)], NOW)
    assert signals(first) == ["signed_up"]
    assert "signed_up" not in signals(again)
    [event] = [orjson.loads(m.value) for m in first if m.topic == LIFECYCLE and m.value]
    assert event["method"] == "invited"


async def test_events_received_before_an_erasure_are_forgotten() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    gil = Events("gil", None)
    store.erasures[identity_hash(("user", "gil"))] = at(5)
    before, after = gil.order("o-1", 10, hours=1), gil.order("o-2", 20, hours=6)
    messages = await fold_batch(store, [before, after], NOW)
    snapshot = profiles(messages)[customer_id_for(("user", "gil"))]
    assert snapshot["commerce"]["orders_count"] == 1
    assert Decimal(snapshot["commerce"]["net_revenue"]) == Decimal(20)
    assert after.received_at - before.received_at == timedelta(hours=5)


async def test_a_busy_referrer_is_locked_with_the_first_locks_when_the_batch_is_redone() -> None:
    store, fold_batch = MemoryProfileStore(), FoldBatch(LoyaltyRule())
    hal, ivy = Events("hal", None), Events("ivy", None)
    await fold_batch(store, [ivy.page()], NOW)
    await fold_batch(
        store, [hal.track("Referral Code Used", {"referral_code": "X", "referrer_id": "ivy"})], NOW
    )
    # Hal's next batch names no referrer; the stored state does. Another consumer holds Ivy.
    store.busy = {("user", "ivy")}
    batch = [hal.order("o-1", 10, hours=1)]
    with pytest.raises(LateLockError):
        await fold_batch(store, batch, NOW)
    store.busy = set()
    messages = await fold_batch(store, batch, NOW)
    assert ("user", "ivy") in store.locked_first[-1]
    # Redone with Ivy among the first locks, the batch still refreshes Ivy's figures.
    ivy_now = profiles(messages)[customer_id_for(("user", "ivy"))]
    assert ivy_now["referrals"]["referred_customers_count"] == 1
    assert Decimal(ivy_now["referrals"]["referred_revenue"]) == Decimal(10)

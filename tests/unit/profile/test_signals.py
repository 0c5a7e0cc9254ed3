"""lifecycle.v1 signals that follow from a fold, with ids stable across redelivery."""

from datetime import timedelta
from decimal import Decimal

from schemas.topics.lifecycle_v1 import CartActivity, ConsentChanged, FirstOrder, OrderCompleted
from services.profile.domain import ProfileState, fold, lifecycle_signals
from services.profile.domain.signals import customer_erased, profiles_merged
from tests.unit.profile.factory import Events, at

EMPTY = ProfileState()
NOW = at(24)


def test_first_order_then_each_new_order() -> None:
    ev = Events()
    first_batch = [
        ev.order("o2", 20.00, hours=2, products=[{"product_id": "p1", "price": 20.0}]),
        ev.order("o1", 10.00, hours=1),
    ]
    one = fold(EMPTY, first_batch)
    signals = lifecycle_signals(EMPTY, one, customer_id="c1", now=NOW)
    first, o1, o2, cart = signals
    assert isinstance(first, FirstOrder)
    assert (first.order_id, first.revenue, first.currency, first.occurred_at) == (
        "o1",
        Decimal("10.0"),
        "USD",
        at(1),
    )
    assert isinstance(o1, OrderCompleted)
    assert isinstance(o2, OrderCompleted)
    assert [o1.order_id, o2.order_id] == ["o1", "o2"]
    assert [(i.product_id, i.price) for i in o2.items] == [("p1", Decimal("20.0"))]
    # The order emptied the cart: notify disarms its abandonment timer.
    assert isinstance(cart, CartActivity)
    assert (cart.items_count, cart.last_activity_at) == (0, at(2))

    two = fold(one, [ev.order("o3", 5.00, hours=3)])
    later = lifecycle_signals(one, two, customer_id="c1", now=NOW)
    assert [s.type for s in later] == ["order_completed", "cart_activity"]

    # A resent order (same id) is not new; an older cart event does not move last activity.
    three = fold(two, [ev.order("o3", 5.00, hours=4), ev.track("Product Viewed", hours=5)])
    assert [s.type for s in lifecycle_signals(two, three, customer_id="c1", now=NOW)] == [
        "cart_activity"
    ]


def test_ids_are_stable_across_redelivery_and_differ_by_customer() -> None:
    ev = Events()
    batch = [ev.order("o1", 10.00, hours=1), ev.track("Unsubscribed", hours=2)]
    once = lifecycle_signals(EMPTY, fold(EMPTY, batch), customer_id="c1", now=NOW)
    again = lifecycle_signals(
        EMPTY, fold(EMPTY, batch[::-1]), customer_id="c1", now=NOW + timedelta(hours=1)
    )
    assert [s.event_id for s in once] == [s.event_id for s in again]
    other = lifecycle_signals(EMPTY, fold(EMPTY, batch), customer_id="c2", now=NOW)
    assert not {s.event_id for s in once} & {s.event_id for s in other}


def test_cart_activity_carries_the_open_cart() -> None:
    ev = Events()
    state = fold(
        EMPTY,
        [
            ev.track(
                "Product Added",
                {
                    "product_id": "p1",
                    "price": 4.5,
                    "quantity": 2,
                    "cart_id": "k1",
                    "currency": "eur",
                },
                hours=1,
            ),
            ev.track("Checkout Started", hours=2),
        ],
    )
    (cart,) = lifecycle_signals(EMPTY, state, customer_id="c1", now=NOW)
    assert isinstance(cart, CartActivity)
    assert (cart.cart_id, cart.items_count, cart.value, cart.currency) == (
        "k1",
        2,
        Decimal("9.0"),
        "EUR",
    )
    assert (cart.occurred_at, cart.checkout_started) == (at(2), True)


def test_consent_changed_only_when_the_status_changes() -> None:
    ev = Events()
    opted_in = fold(EMPTY, [ev.identify({"marketing_opt_in": True}, hours=1)])
    (signal,) = lifecycle_signals(EMPTY, opted_in, customer_id="c1", now=NOW)
    assert isinstance(signal, ConsentChanged)
    assert (signal.status, signal.source, signal.occurred_at) == ("opted_in", "identify", at(1))

    restated = fold(opted_in, [ev.identify({"marketing_opt_in": True}, hours=2)])
    assert lifecycle_signals(opted_in, restated, customer_id="c1", now=NOW) == []

    # A late opt-out older than the opt-in changes nothing.
    late = fold(restated, [ev.track("Unsubscribed", hours=0)])
    assert lifecycle_signals(restated, late, customer_id="c1", now=NOW) == []

    out = fold(late, [ev.track("Unsubscribed", hours=3)])
    (signal,) = lifecycle_signals(late, out, customer_id="c1", now=NOW)
    assert isinstance(signal, ConsentChanged)
    assert (signal.status, signal.source) == ("opted_out", "Unsubscribed")


def test_history_older_than_max_age_is_announced_as_history_and_consent_still_counts() -> None:
    ev = Events()
    imported = fold(
        EMPTY,
        [
            ev.order("o1", 10.00, hours=1),
            ev.track("Product Added", {"product_id": "p1"}, hours=2),
            ev.track("Unsubscribed", hours=3),
        ],
    )
    now = at(3) + timedelta(days=31)
    order, consent = lifecycle_signals(EMPTY, imported, customer_id="c1", now=now)
    # The order is a fact for scoring's ledger, marked as history so no journey starts from it;
    # no first order or cart activity is news.
    assert isinstance(order, OrderCompleted)
    assert (order.order_id, order.historical) == ("o1", True)
    assert isinstance(consent, ConsentChanged)
    fresh = lifecycle_signals(EMPTY, imported, customer_id="c1", now=at(4))
    assert [s.historical for s in fresh if isinstance(s, OrderCompleted)] == [False]


def test_a_merge_is_announced_with_the_same_id_however_its_absorbed_ids_are_listed() -> None:
    first = profiles_merged("cus_s", ["cus_b", "cus_a"], at(0))
    again = profiles_merged("cus_s", ["cus_a", "cus_b"], at(1))
    assert first.event_id == again.event_id
    assert first.absorbed_customer_ids == ["cus_a", "cus_b"]
    assert customer_erased("cus_s", at(0)).event_id != customer_erased("cus_s", at(1)).event_id

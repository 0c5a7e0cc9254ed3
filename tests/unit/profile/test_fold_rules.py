"""The business rules of the profile, one example each."""

from decimal import Decimal

import pytest

from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import LoyaltyRule, ProfileState, fold, to_snapshot
from tests.unit.profile.factory import Events, at

EMPTY = ProfileState()


def snap(
    events: list[Touchpoint],
    *,
    loyalty: LoyaltyRule | None = None,
    referred_customers_count: int = 0,
    referred_revenue_by_currency: dict[str, Decimal] | None = None,
    referred_by_customer_id: str | None = None,
) -> ProfileSnapshot:
    return to_snapshot(
        fold(EMPTY, events),
        customer_id="c1",
        revision=7,
        updated_at=at(1000),
        loyalty=loyalty or LoyaltyRule(),
        merged_customer_ids=["c9", "c8"],
        referred_customers_count=referred_customers_count,
        referred_revenue_by_currency=referred_revenue_by_currency,
        referred_by_customer_id=referred_by_customer_id,
    )


# Commerce


def test_net_revenue_subtracts_a_refund_and_a_cancellation() -> None:
    ev = Events()
    profile = snap(
        [
            ev.order("o1", 100.00, products=[{"product_id": "p1", "quantity": 2}]),
            ev.order("o2", 50.00, hours=1),
            ev.order("o3", 30.00, hours=2, products=[{"product_id": "p3", "category": "hats"}]),
            ev.track("Order Refunded", {"order_id": "o1", "total": 20.00}, hours=3),
            ev.track("Order Cancelled", {"order_id": "o2"}, hours=4),
        ]
    )
    c = profile.commerce
    assert c.currency == "USD"
    assert c.gross_revenue == Decimal("180.00")
    assert c.refunded_revenue == Decimal("20.00")
    assert c.cancelled_revenue == Decimal("50.00")
    assert c.net_revenue == Decimal("110.00")
    # The cancelled order is not an order: two remain.
    assert c.orders_count == 2
    assert c.average_order_value == Decimal("55.00")
    assert (c.first_order_at, c.last_order_at) == (at(0), at(2))
    assert c.items_purchased == 3
    assert c.products_purchased == ["p1", "p3"]
    assert c.categories_purchased == ["hats"]
    assert c.revenue_by_currency == {"USD": Decimal("110.00")}
    # Exact decimal strings on the wire, written as the events wrote the amounts.
    assert profile.model_dump(mode="json")["commerce"]["net_revenue"] == "110.0"


def test_refunds_never_take_an_order_below_zero() -> None:
    ev = Events()
    profile = snap(
        [
            ev.order("o1", 40.00),
            ev.track("Order Refunded", {"order_id": "o1", "total": 30.00}, hours=1),
            ev.track("Order Refunded", {"order_id": "o1", "total": 30.00}, hours=2),
            ev.order("o2", 10.00, hours=3),
            ev.track("Order Refunded", {"order_id": "o2", "total": 4.00}, hours=4),
            ev.track("Order Cancelled", {"order_id": "o2"}, hours=5),
        ]
    )
    c = profile.commerce
    assert c.refunded_revenue == Decimal("44.00")  # 40 (capped) + 4
    assert c.cancelled_revenue == Decimal("6.00")  # what the refund left of o2
    assert c.net_revenue == Decimal("0.00")
    assert c.orders_count == 1
    assert c.average_order_value == Decimal("0.00")


def test_a_refund_without_amount_refunds_the_order_and_products_refund_their_price() -> None:
    ev = Events()
    profile = snap(
        [
            ev.order("o1", 25.00),
            ev.track("Order Refunded", {"order_id": "o1"}, hours=1),
            ev.order("o2", 60.00),
            ev.track(
                "Order Refunded",
                {
                    "order_id": "o2",
                    "products": [{"product_id": "p1", "price": 9.99, "quantity": 2}],
                },
                hours=1,
            ),
        ]
    )
    assert profile.commerce.refunded_revenue == Decimal("44.98")
    assert profile.commerce.net_revenue == Decimal("40.02")


def test_a_refund_that_arrives_before_its_order_still_counts() -> None:
    ev = Events()
    refund = ev.track("Order Refunded", {"order_id": "o1", "total": 5.00}, hours=2)
    order = ev.order("o1", 15.00, hours=1)
    state = fold(fold(EMPTY, [refund]), [order])
    assert state == fold(EMPTY, [order, refund])
    assert snap([refund, order]).commerce.net_revenue == Decimal("10.00")


def test_a_resent_order_counts_once_with_its_latest_content_and_first_date() -> None:
    ev = Events()
    profile = snap([ev.order("o1", 10.00, hours=1), ev.order("o1", 12.50, hours=5)])
    assert profile.commerce.orders_count == 1
    assert profile.commerce.gross_revenue == Decimal("12.50")
    assert profile.commerce.first_order_at == at(1)


def test_money_sums_are_exact_whatever_the_float_order() -> None:
    ev = Events()
    orders = [ev.order(f"o{i}", amount) for i, amount in enumerate([0.1, 0.2, 0.3, 1e-2])]
    assert snap(orders).commerce.gross_revenue == Decimal("0.61")
    assert snap(orders[::-1]) == snap(orders)


def test_money_fields_cover_the_main_currency_and_each_currency_is_kept() -> None:
    ev = Events()
    profile = snap(
        [
            ev.order("o1", 10.00, currency="EUR"),
            ev.order("o2", 20.00, currency="usd", hours=1),
            ev.order("o3", 30.00, currency="EUR", hours=2),
        ]
    )
    c = profile.commerce
    assert c.currency == "EUR"
    assert c.net_revenue == Decimal("40.00")
    assert c.average_order_value == Decimal("20.00")
    assert c.orders_count == 3
    assert c.revenue_by_currency == {"EUR": Decimal("40.00"), "USD": Decimal("20.00")}


def test_with_as_many_orders_in_each_currency_the_latest_decides() -> None:
    ev = Events()
    profile = snap(
        [ev.order("o1", 10.00, currency="EUR", hours=3), ev.order("o2", 20.00, currency="GBP")]
    )
    assert profile.commerce.currency == "EUR"


# Loyalty


def test_loyalty_points_follow_net_revenue_per_order_rounded_down() -> None:
    ev = Events()
    events = [
        ev.order("o1", 10.99),
        ev.order("o2", 5.50, hours=1),
        ev.track("Order Refunded", {"order_id": "o2", "total": 2.00}, hours=2),
        ev.order("o3", 100.00, hours=3),
        ev.track("Order Cancelled", {"order_id": "o3"}, hours=4),
        ev.order("o4", 1000, currency="JPY", hours=5),
        ev.track("Loyalty Points Redeemed", {"points": 4}, hours=6),
        ev.track("Loyalty Points Redeemed", {"points": -3}, hours=6),  # ignored: not a count
        ev.track("Loyalty Points Redeemed", {"points": "lots"}, hours=6),  # ignored
    ]
    rule = LoyaltyRule(points_per_unit=Decimal(2), per_currency={"JPY": Decimal("0.01")})
    loyalty = snap(events, loyalty=rule).loyalty
    # o1: floor(21.98) = 21; o2: floor(7.00) = 7; o3 cancelled: 0; o4: floor(10) = 10
    assert loyalty.points_earned == 38
    assert loyalty.points_redeemed == 4
    assert loyalty.points_balance == 34


# Consent


def test_unsubscribe_beats_an_earlier_opt_in_and_loses_to_a_later_one() -> None:
    ev = Events()
    opt_in = ev.identify({"marketing_opt_in": True}, hours=1)
    unsubscribe = ev.track("Unsubscribed", {"list_id": "news"}, hours=2)
    again = ev.identify({"email_marketing_consent": "yes"}, hours=3)

    out = snap([unsubscribe, opt_in]).consent
    assert (out.email_marketing, out.email_marketing_changed_at) == ("opted_out", at(2))
    assert out.email_marketing_source == "Unsubscribed"

    back = snap([again, unsubscribe, opt_in]).consent
    assert (back.email_marketing, back.email_marketing_changed_at) == ("opted_in", at(3))
    assert back.email_marketing_source == "identify"


def test_consent_defaults_to_unknown_and_an_opt_out_wins_a_tie() -> None:
    ev = Events()
    assert snap([ev.page()]).consent.email_marketing == "unknown"
    # Same instant, whichever messageId sorts first: do not email.
    tied = [
        ev.identify({"accepts_marketing": True}, hours=1, message_id="zzz"),
        ev.track("Unsubscribed", hours=1, message_id="aaa"),
    ]
    assert snap(tied).consent.email_marketing == "opted_out"
    both = ev.identify({"marketing_opt_in": True, "unsubscribed": True}, hours=2)
    assert snap([both]).consent.email_marketing == "opted_out"


def test_consent_from_signed_up_properties() -> None:
    ev = Events()
    signed = ev.track("Signed Up", {"email": "ann@example.com", "acceptsMarketing": True})
    consent = snap([signed]).consent
    assert (consent.email_marketing, consent.email_marketing_source) == ("opted_in", "Signed Up")


# Cart


def _added(ev: Events, product: str, hours: float, **props: object) -> Touchpoint:
    return ev.track("Product Added", {"product_id": product, "cart_id": "k1", **props}, hours=hours)


def test_cart_sums_adds_less_removals_and_an_order_empties_it() -> None:
    ev = Events()
    events = [
        _added(ev, "p1", 1, price=10.00, quantity=1, name="Sock"),
        _added(ev, "p1", 2, price=12.50, quantity=2, name="Sock"),  # latest price applies
        ev.track("Product Removed", {"product_id": "p1", "quantity": 1}, hours=3),
        _added(ev, "p2", 3, price=5.00),
        ev.track("Product Removed", {"product_id": "p2"}, hours=4),  # no quantity: the line
        ev.track("Checkout Started", {"value": 25.0}, hours=5),
    ]
    cart = snap(events).cart
    assert [(i.product_id, i.quantity, i.price) for i in cart.items] == [
        ("p1", 2, Decimal("12.50"))
    ]
    assert (cart.items_count, cart.value, cart.currency) == (2, Decimal("25.00"), None)
    assert cart.cart_id == "k1"
    assert (cart.last_activity_at, cart.checkout_started_at) == (at(5), at(5))
    assert cart.checkout_pending

    after_order = snap([*events, ev.order("o1", 25.00, hours=6), _added(ev, "p3", 7, price=1.0)])
    cart = after_order.cart
    assert [i.product_id for i in cart.items] == ["p3"]
    assert (cart.currency, cart.last_activity_at, cart.checkout_pending) == ("USD", at(7), False)


def test_an_order_empties_the_cart_even_when_it_arrives_first() -> None:
    ev = Events()
    add = _added(ev, "p1", 1, price=3.0)
    order = ev.order("o1", 3.00, hours=2)
    state = fold(fold(EMPTY, [order]), [add])
    assert state.cart == {}
    assert snap([order, add]).cart.items == []


def test_a_removal_at_the_same_instant_as_an_add_wins() -> None:
    ev = Events()
    events = [_added(ev, "p1", 1), ev.track("Product Removed", {"product_id": "p1"}, hours=1)]
    assert snap(events).cart.items == []


# Acquisition


def test_first_touch_is_the_earliest_visit_and_direct_becomes_referral_with_a_code() -> None:
    ev = Events()
    events = [
        ev.page("https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=may", hours=5),
        ev.page("https://shop.example/landing", referrer="https://www.google.co.uk/", hours=1),
        ev.track("Referral Code Used", {"referral_code": "ANN10", "referrer_id": "u7"}, hours=2),
        ev.track("Signed Up", {"referral_code": "LATER"}, hours=3),
    ]
    acq = snap(events, referred_by_customer_id="c7").acquisition
    assert (acq.channel, acq.source, acq.medium) == ("search", "google.co.uk", "organic")
    assert acq.first_touch_at == at(1)
    assert acq.landing_page_url == "https://shop.example/landing"
    assert acq.referrer_url == "https://www.google.co.uk/"
    assert (acq.referral_code, acq.referred_by_user_id) == ("ANN10", "u7")
    assert acq.referred_by_customer_id == "c7"

    direct = snap([ev.page(hours=0), *events]).acquisition
    assert (direct.channel, direct.first_touch_at) == ("referral", at(0))


def test_the_affiliate_is_the_first_one_named() -> None:
    ev = Events()
    tagged = ev.page(campaign={"source": "partnerco", "medium": "affiliate"}, hours=2)
    order = ev.order("o1", 5.0, hours=1)
    order_with = ev.track(
        "Order Completed",
        {
            "order_id": "o2",
            "revenue": 5.0,
            "currency": "USD",
            "products": [],
            "affiliation": "Deals Inc",
        },
        hours=3,
    )
    acq = snap([tagged, order, order_with]).acquisition
    assert (acq.channel, acq.source, acq.affiliate) == ("affiliate", "partnerco", "partnerco")
    assert snap([order_with, order]).acquisition.affiliate == "Deals Inc"
    assert snap([order]).acquisition.channel is None  # no visit seen: unknown, not direct


# Identity, activity, engagement, support


def test_identity_traits_and_activity() -> None:
    ev = Events(anonymous_id=None)
    web = Events(user_id=None, anonymous_id="a2")
    events = [
        web.page(hours=0),
        ev.identify({"email": "Ann@Example.COM", "plan": "free", "name": "Ann"}, hours=1),
        ev.identify({"plan": "pro", "email": "not an email"}, hours=25),
        ev.track("Product Viewed", {"product_id": "p1"}, hours=26),
        ev.track("Product Added", {"product_id": "p1"}, hours=26),
        ev.track("Product Added", {"sku": "s2"}, hours=26),
        ev.track("Checkout Started", {}, hours=26),
        ev.track("Generic Thing", {"x": 1}, hours=27, context={"timezone": "Europe/Paris"}),
        Events(anonymous_id="a3").track("Product Viewed", {"product_id": "p2"}, hours=2),
    ]
    profile = snap(events)
    assert profile.user_id == "u1"
    assert profile.anonymous_ids == ["a2", "a3"]
    assert profile.merged_customer_ids == ["c8", "c9"]
    assert profile.email == "ann@example.com"
    assert profile.traits == {"email": "not an email", "name": "Ann", "plan": "pro"}
    assert profile.timezone == "Europe/Paris"
    a = profile.activity
    assert (a.first_seen_at, a.last_seen_at) == (at(0), at(27))
    assert (a.page_views, a.product_views, a.active_days) == (1, 2, 2)
    assert (a.cart_adds, a.checkouts_started) == (2, 1)
    assert (profile.customer_id, profile.revision, profile.updated_at) == ("c1", 7, at(1000))


def test_email_engagement_support_reviews_and_referrals_made() -> None:
    ev = Events()
    events = [
        ev.track("Email Delivered", hours=1),
        ev.track("Email Sent", hours=2),
        ev.track("Email Opened", hours=3),
        ev.track("Email Link Clicked", {"link_url": "https://shop.example"}, hours=4),
        ev.track("Support Ticket Opened", {"ticket_id": "t1"}, hours=1),
        ev.track("Support Ticket Opened", {"ticket_id": "t2"}, hours=2),
        ev.track("Support Ticket Opened", {"ticket_id": "t2"}, hours=3),  # same ticket again
        ev.track("Support Ticket Resolved", {"ticket_id": "t1"}, hours=4),
        ev.track("Review Submitted", {"rating": 5}, hours=5),
        ev.track("Review Submitted", {"rating": 4}, hours=6),
        ev.track("Review Submitted", {"rating": 4}, hours=7),
        ev.track("Review Submitted", {}, hours=8),  # no rating: counted, not averaged
    ]
    profile = snap(
        events, referred_customers_count=2, referred_revenue_by_currency={"USD": Decimal("80.50")}
    )
    e = profile.email_engagement
    assert (e.sent_count, e.opened_count, e.clicked_count) == (2, 1, 1)
    assert (e.last_sent_at, e.last_opened_at, e.last_clicked_at) == (at(2), at(3), at(4))
    s = profile.support
    assert (s.tickets_opened, s.tickets_resolved, s.tickets_open) == (2, 1, 1)
    assert (s.reviews_count, s.average_rating) == (4, 4.33)
    assert profile.referrals.referred_customers_count == 2
    assert profile.referrals.referred_revenue == Decimal("80.50")


def test_fold_leaves_its_input_state_alone_and_drops_repeated_message_ids() -> None:
    ev = Events()
    first = fold(EMPTY, [ev.page(message_id="m1")])
    stored = first.to_json()
    again = fold(first, [ev.track("Email Opened", message_id="m2")] * 3)
    assert first.to_json() == stored
    assert again.emails_opened == 1


def test_an_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 99"):
        ProfileState.from_json({"version": 99})

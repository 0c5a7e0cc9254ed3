"""Sends as the engine makes them, for every template the shipped journeys use, and recipients
to render them for: a realistic customer and one notify knows almost nothing about.

The sends come from running the shipped journeys on simulated time (tests.unit.notify.factory),
so their context is exactly what the shell will hand to `compose`.
"""

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from schemas.topics._common import CartItem
from schemas.topics.lifecycle_v1 import CartActivity, LifecycleEvent, OrderCompleted
from services.notify.domain import Policy, Recipient, Send
from services.notify.settings import NotifySettings
from tests.unit.notify.factory import (
    CATALOG,
    CUSTOMER,
    T0,
    Sim,
    cart,
    days,
    hours,
    lapsed,
    order,
    recipient,
    referral,
    segment,
    signed_up,
)

EMAIL = "zoe.martin@example.com"
SECRET = "test-link-secret-" + "k" * 32
NO_LIMITS = Policy(caps=(), quiet_hours=None)

CART_ITEMS = [
    CartItem(product_id="p-100", name="Linen shirt", quantity=2, price=Decimal("39.90")),
    CartItem(product_id="p-200", name="Canvas tote <Limited>", quantity=1, price=Decimal("19.00")),
]


def settings(**overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "env": "local",
        "store_name": "Maison Verte",
        "store_url": "https://shop.example.com",
        "public_url": "https://notify.example.com",
        "link_secret": SECRET,
    }
    return NotifySettings(**(values | overrides))


def profile(**overrides: Any) -> dict[str, Any]:
    """profiles.v1 JSON of a customer with a name, orders, a cart and points."""
    record: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "revision": 7,
        "updated_at": "2026-03-01T10:00:00Z",
        "user_id": "u-42",
        "email": EMAIL,
        "traits": {"first_name": "Zoë", "last_name": "Martin", "plan": "plus"},
        "timezone": "Europe/Paris",
        "locale": "en-GB",
        "consent": {
            "email_marketing": "opted_in",
            "email_marketing_changed_at": "2026-01-01T00:00:00Z",
        },
        "commerce": {
            "currency": "EUR",
            "orders_count": 3,
            "net_revenue": "182.70",
            "products_purchased": ["p-100", "p-300", "p-400"],
        },
        "cart": {
            "cart_id": "cart-1",
            "items": [item.model_dump(mode="json") for item in CART_ITEMS],
            "items_count": 3,
            "value": "98.80",
            "currency": "EUR",
        },
        "loyalty": {"points_earned": 800, "points_redeemed": 100, "points_balance": 700},
    }
    return record | overrides


def scores(**overrides: Any) -> dict[str, Any]:
    """scores.v1 JSON with recommendations and upgrades."""
    record: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "computed_at": "2026-03-01T10:00:00Z",
        "currency": "EUR",
        "clv_historical": "182.70",
        "clv_predicted": "240.00",
        "value_tier": "most_valuable",
        "ladder_step": "supporter",
        "lifecycle_stage": "retention",
        "churn_risk": 0.2,
        "recommendations": ["p-200", "p-500", "p-600", "p-700", "p-800"],
        "upgrades": ["p-900"],
    }
    return record | overrides


def realistic_recipient() -> Recipient:
    return Recipient.from_records(CUSTOMER, profile(), scores())


def bare_recipient() -> Recipient:
    """Nothing known but the address: no name, orders, points or scores."""
    return Recipient.from_records(CUSTOMER, {"customer_id": CUSTOMER, "email": EMAIL}, None)


def _cart_with_items(at: datetime) -> CartActivity:
    return CartActivity(
        type="cart_activity",
        event_id=f"cart@{at.isoformat()}",
        customer_id=CUSTOMER,
        occurred_at=at,
        cart_id="cart-1",
        items=CART_ITEMS,
        items_count=3,
        value=Decimal("98.80"),
        currency="EUR",
        last_activity_at=at,
    )


def _order_with_items(at: datetime) -> OrderCompleted:
    return OrderCompleted(
        type="order_completed",
        event_id="order:o-1001",
        customer_id=CUSTOMER,
        occurred_at=at,
        order_id="o-1001",
        revenue=Decimal("98.80"),
        currency="EUR",
        items=CART_ITEMS,
    )


def _triggers(rich: bool) -> list[LifecycleEvent]:
    return [
        signed_up(T0),
        _cart_with_items(T0) if rich else cart(T0),
        _order_with_items(T0 + days(2)) if rich else order(T0 + days(2)),
        lapsed(T0 + days(70)),
        segment(T0 + days(100), "value_tier", "most_valuable"),
        segment(T0 + days(100) + hours(1), "ladder_step", "supporter"),
        referral(T0 + days(101)),
    ]


@cache
def journey_sends(rich: bool = True) -> dict[str, Send]:
    """One Send per template the shipped journeys use, made by the engine. `rich`: triggers
    with cart and order lines; else as bare as lifecycle.v1 allows."""
    sim = Sim(
        recipient=recipient(email=EMAIL, points=900, recommendations=("p-200",)),
        policy=NO_LIMITS,
    )
    for event in _triggers(rich):
        sim.deliver(event, event.occurred_at)
    sim.run_until(T0 + days(200))
    found: dict[str, Send] = {}
    for _, send in sim.sends():
        found.setdefault(send.template, send)
    missing = set(CATALOG.templates()) - set(found)
    assert not missing, f"the simulated history reaches no send of {missing}"
    return found


NOW = datetime(2026, 3, 12, 9, 30, tzinfo=UTC)

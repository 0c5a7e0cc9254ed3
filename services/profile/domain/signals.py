"""Lifecycle signals the profile service announces: those that follow from a fold (first order,
orders, sign-up, cart activity, consent), a referred customer's first order on the referrer's
key, and merges and erasures.

Each event_id is derived from the customer and the event that caused the signal, so a batch
folded again after a crash announces the same ids and downstream consumers act once.
"""

from datetime import datetime, timedelta

from schemas.topics.lifecycle_v1 import (
    CartActivity,
    ConsentChanged,
    CustomerErased,
    FirstOrder,
    LifecycleEvent,
    ProfilesMerged,
    ReferralConverted,
    SignedUp,
    derived_event_id,
)
from schemas.topics.lifecycle_v1 import OrderCompleted as OrderCompletedSignal
from services.profile.domain.snapshot import (
    cart_item,
    consent_status,
    main_currency,
    open_cart,
    order_figures,
)
from services.profile.domain.state import ProfileState

SIGNAL_MAX_AGE = timedelta(days=30)
"""Orders and cart activity older than this (by event time) are history, not news: importing
past orders must not start post-purchase or abandoned-cart emails. Such orders are still
announced, marked `historical`, because scoring's ledger needs every order; consent always
counts."""


def lifecycle_signals(
    before: ProfileState,
    after: ProfileState,
    *,
    customer_id: str,
    now: datetime,
    max_age: timedelta = SIGNAL_MAX_AGE,
) -> list[LifecycleEvent]:
    """The lifecycle.v1 events announcing what changed from `before` to `after`."""
    out: list[LifecycleEvent] = []
    horizon = now - max_age
    if not before.orders and after.orders:
        first = min(after.orders.values(), key=lambda o: (o.first_at, o.order_id))
        if first.first_at >= horizon:
            out.append(
                FirstOrder(
                    type="first_order",
                    event_id=derived_event_id("first_order", customer_id, first.order_id),
                    customer_id=customer_id,
                    occurred_at=first.first_at,
                    order_id=first.order_id,
                    revenue=first.revenue,
                    currency=first.currency,
                )
            )
    new = [o for oid, o in after.orders.items() if oid not in before.orders]
    for order in sorted(new, key=lambda o: (o.first_at, o.order_id)):
        out.append(
            OrderCompletedSignal(
                type="order_completed",
                event_id=derived_event_id("order_completed", customer_id, order.order_id),
                customer_id=customer_id,
                occurred_at=order.first_at,
                order_id=order.order_id,
                revenue=order.revenue,
                currency=order.currency,
                items=[cart_item(item) for item in order.items],
                historical=order.first_at < horizon,
            )
        )
    signed_up = after.signed_up
    if before.signed_up is None and signed_up is not None and signed_up.at >= horizon:
        out.append(
            SignedUp(
                type="signed_up",
                event_id=derived_event_id("signed_up", customer_id, signed_up.message_id),
                customer_id=customer_id,
                occurred_at=signed_up.at,
                method=signed_up.value or None,
            )
        )
    activity = after.cart_activity
    if activity is not None and activity != before.cart_activity and activity.at >= horizon:
        cart = open_cart(after, main_currency(order_figures(after)))
        out.append(
            CartActivity(
                type="cart_activity",
                event_id=derived_event_id(
                    "cart_activity", customer_id, activity.at.isoformat(), activity.message_id
                ),
                customer_id=customer_id,
                occurred_at=activity.at,
                cart_id=cart.cart_id,
                items=cart.items,
                items_count=cart.items_count,
                value=cart.value,
                currency=cart.currency,
                last_activity_at=activity.at,
                checkout_started=cart.checkout_pending,
            )
        )
    consent = after.consent
    if consent is not None and consent_status(consent) != consent_status(before.consent):
        out.append(
            ConsentChanged(
                type="consent_changed",
                event_id=derived_event_id(
                    "consent_changed", customer_id, consent.at.isoformat(), consent.message_id
                ),
                customer_id=customer_id,
                occurred_at=consent.at,
                status=consent_status(consent),
                source=consent.source,
            )
        )
    return out


def referral_converted(referrer_id: str, first: FirstOrder) -> ReferralConverted:
    """On the referrer's key: someone they referred placed their first order."""
    return ReferralConverted(
        type="referral_converted",
        event_id=derived_event_id("referral_converted", referrer_id, first.event_id),
        customer_id=referrer_id,
        occurred_at=first.occurred_at,
        referred_customer_id=first.customer_id,
        order_id=first.order_id,
        revenue=first.revenue,
        currency=first.currency,
    )


def profiles_merged(customer_id: str, absorbed: list[str], now: datetime) -> ProfilesMerged:
    """`customer_id` absorbed these customers; the same merge always has the same event_id."""
    absorbed = sorted(absorbed)
    return ProfilesMerged(
        type="profiles_merged",
        event_id=derived_event_id("profiles_merged", customer_id, *absorbed),
        customer_id=customer_id,
        occurred_at=now,
        absorbed_customer_ids=absorbed,
    )


def customer_erased(customer_id: str, now: datetime) -> CustomerErased:
    """Tells the other services to forget the customer; it carries no personal data."""
    return CustomerErased(
        type="customer_erased",
        event_id=derived_event_id("customer_erased", customer_id, now.isoformat()),
        customer_id=customer_id,
        occurred_at=now,
    )

"""lifecycle.v1 (keyed by customer id): transitions in a customer's life, discriminated by `type`.

Every event has an `event_id` that is the same on redelivery, so consumers act once per id;
producers derive it with `derived_event_id` from what caused the event.
"""

from typing import Annotated, Literal
from uuid import UUID, uuid5

from pydantic import Field

from schemas._types import Count, Currency, Id, Money, OptionalId, Text, UtcDatetime
from schemas.topics._common import CartItem, TopicModel
from schemas.topics.profiles_v1 import ConsentStatus
from schemas.topics.scores_v1 import LifecycleStage

_EVENT_ID_NAMESPACE = UUID("6f6c1c3e-2b7a-5d0e-9a43-6c1b8e6a2f51")


def derived_event_id(kind: str, customer_id: str, *parts: str) -> str:
    """The event id of `kind` for a customer and what caused it: the same inputs, the same id,
    so an event produced again (after a crash, a redelivery, a refit) is recognised."""
    return str(uuid5(_EVENT_ID_NAMESPACE, "\x1f".join((kind, customer_id, *parts))))


class _Lifecycle(TopicModel):
    event_id: Id = Field(description="Stable across redelivery: consumers deduplicate on it.")
    customer_id: Id
    occurred_at: UtcDatetime


class StageChanged(_Lifecycle):
    type: Literal["stage_changed"]
    from_stage: LifecycleStage | None
    to_stage: LifecycleStage


class SegmentChanged(_Lifecycle):
    type: Literal["segment_changed"]
    dimension: Literal["value_tier", "rfm_segment", "ladder_step", "churn_risk"]
    from_segment: str | None = Field(max_length=64)
    to_segment: str = Field(max_length=64)
    direction: Literal["up", "down"] | None = Field(
        default=None,
        description="For ranked dimensions (value tier, ladder step, churn risk band: low, "
        "medium, high): up when the new segment ranks higher; null for RFM segments and firsts",
    )


class FirstOrder(_Lifecycle):
    type: Literal["first_order"]
    order_id: Id
    revenue: Money
    currency: Currency | None = None


class OrderCompleted(_Lifecycle):
    """Every order, imported history included: scoring's per-order ledger, and post-purchase
    journeys personalised by what was bought (those skip `historical` orders)."""

    type: Literal["order_completed"]
    order_id: Id
    revenue: Money
    currency: Currency | None = None
    items: list[CartItem] = Field(default_factory=list)
    historical: bool = Field(
        default=False,
        description="Older than 30 days when folded (an import of past orders): a fact for the "
        "ledger, news for no journey",
    )


class _CartState(_Lifecycle):
    cart_id: OptionalId = None
    items: list[CartItem] = Field(default_factory=list)
    items_count: Count
    value: Money
    currency: Currency | None = None
    last_activity_at: UtcDatetime
    checkout_started: bool = False


class SignedUp(_Lifecycle):
    """The customer created an account (a Signed Up event): welcome journeys start here."""

    type: Literal["signed_up"]
    method: Text | None = None


class ReferralConverted(_Lifecycle):
    """Announced on the referrer's key: a customer they referred placed their first order."""

    type: Literal["referral_converted"]
    referred_customer_id: Id
    order_id: Id
    revenue: Money
    currency: Currency | None = None


class CartActivity(_CartState):
    """The cart changed; notify (re)arms its abandonment timer from last_activity_at."""

    type: Literal["cart_activity"]


class CartAbandoned(_CartState):
    type: Literal["cart_abandoned"]


class ConsentChanged(_Lifecycle):
    type: Literal["consent_changed"]
    channel: Literal["email"] = "email"
    purpose: Literal["marketing"] = "marketing"
    status: ConsentStatus
    source: Text | None = None


class ProfilesMerged(_Lifecycle):
    """`customer_id` survives; the absorbed ids now resolve to it."""

    type: Literal["profiles_merged"]
    absorbed_customer_ids: list[str] = Field(min_length=1)


class CustomerErased(_Lifecycle):
    """Forget the customer: delete their rows and cancel pending sends. Carries no personal data."""

    type: Literal["customer_erased"]


LifecycleEvent = Annotated[
    StageChanged
    | SegmentChanged
    | FirstOrder
    | OrderCompleted
    | SignedUp
    | ReferralConverted
    | CartActivity
    | CartAbandoned
    | ConsentChanged
    | ProfilesMerged
    | CustomerErased,
    Field(discriminator="type"),
]

"""profiles.v1 (compacted, keyed by customer id): the latest profile snapshot per customer.

A null value (tombstone) means the customer was erased. Money is an exact decimal string:
a profile sums many events, and float sums depend on their order, which a fold must not.
"""

from typing import Any, Literal

from pydantic import Field

from schemas._types import (
    ZERO,
    Count,
    Currency,
    Email,
    Id,
    Money,
    Name,
    OptionalId,
    Text,
    UtcDatetime,
)
from schemas.topics._common import CartItem, TopicModel

ConsentStatus = Literal["unknown", "opted_in", "opted_out"]
Channel = Literal[
    "direct", "search", "paid_search", "social", "email", "referral", "affiliate", "other"
]


class Consent(TopicModel):
    """Marketing email needs an opt-in; transactional email does not, so it is not recorded."""

    email_marketing: ConsentStatus = "unknown"
    email_marketing_changed_at: UtcDatetime | None = Field(
        default=None,
        description="Event time of the consent record in force (the latest by event time).",
    )
    email_marketing_source: Text | None = Field(
        default=None, description='What set it, e.g. "identify", "Unsubscribed", "admin".'
    )


class Acquisition(TopicModel):
    """First touch: where the customer came from."""

    first_touch_at: UtcDatetime | None = None
    channel: Channel | None = None
    source: Text | None = None
    medium: Text | None = None
    campaign: Text | None = None
    term: Text | None = None
    content: Text | None = None
    referrer_url: Text | None = None
    landing_page_url: Text | None = None
    referral_code: OptionalId = None
    referred_by_customer_id: OptionalId = None
    referred_by_user_id: OptionalId = Field(
        default=None, description="userId of the customer whose referral code was used."
    )
    affiliate: Text | None = None


class Activity(TopicModel):
    first_seen_at: UtcDatetime | None = None
    last_seen_at: UtcDatetime | None = None
    page_views: Count = Field(default=0, description="Page and screen views.")
    product_views: Count = 0
    active_days: Count = Field(default=0, description="Distinct UTC days with any event.")


class Commerce(TopicModel):
    currency: Currency | None = Field(default=None, description="Currency of the money fields.")
    orders_count: Count = 0
    gross_revenue: Money = Field(default=ZERO, description="Sum of completed orders' revenue.")
    refunded_revenue: Money = ZERO
    cancelled_revenue: Money = ZERO
    net_revenue: Money = Field(default=ZERO, description="Gross less refunds and cancellations.")
    average_order_value: Money | None = None
    first_order_at: UtcDatetime | None = None
    last_order_at: UtcDatetime | None = None
    items_purchased: Count = Field(default=0, description="Sum of quantities over orders.")
    products_purchased: list[str] = Field(default_factory=list, description="Product ids, sorted.")
    categories_purchased: list[str] = Field(default_factory=list, description="Sorted.")
    revenue_by_currency: dict[str, Money] = Field(
        default_factory=dict,
        description=(
            "Net revenue in each currency the customer ordered in; the money fields above count "
            "only orders in `currency`, the customer's main currency."
        ),
    )


class Cart(TopicModel):
    """The open cart: what was added and not yet bought or removed."""

    cart_id: OptionalId = None
    items: list[CartItem] = Field(default_factory=list)
    items_count: Count = 0
    value: Money = ZERO
    currency: Currency | None = Field(default=None, description="Currency of `value`.")
    last_activity_at: UtcDatetime | None = None
    checkout_started_at: UtcDatetime | None = None
    checkout_pending: bool = Field(
        default=False, description="A checkout was started and no order followed it."
    )


class EmailEngagement(TopicModel):
    sent_count: Count = 0
    opened_count: Count = 0
    clicked_count: Count = 0
    last_sent_at: UtcDatetime | None = None
    last_opened_at: UtcDatetime | None = None
    last_clicked_at: UtcDatetime | None = None


class Support(TopicModel):
    tickets_opened: Count = 0
    tickets_resolved: Count = 0
    tickets_open: Count = Field(default=0, description="Opened and not yet resolved.")
    reviews_count: Count = 0
    average_rating: float | None = Field(default=None, ge=0, le=5)


class Referrals(TopicModel):
    referred_customers_count: Count = 0
    referred_revenue: Money = Field(
        default=ZERO, description="Net revenue of the customers this customer referred."
    )


class Loyalty(TopicModel):
    points_earned: Count = 0
    points_redeemed: Count = 0
    points_balance: int = 0


class ProfileSnapshot(TopicModel):
    customer_id: Id = Field(description="Retain's internal customer id; the message key.")
    revision: Count = Field(
        description="Grows with every change to this profile; consumers keep the highest seen."
    )
    updated_at: UtcDatetime = Field(description="When the profile service wrote this snapshot.")
    user_id: OptionalId = None
    anonymous_ids: list[str] = Field(default_factory=list, description="Sorted.")
    merged_customer_ids: list[str] = Field(
        default_factory=list, description="Customer ids merged into this one; they resolve here."
    )
    email: Email | None = None
    traits: dict[str, Any] = Field(
        default_factory=dict, description="Latest value of each trait by event time."
    )
    timezone: Name | None = None
    locale: Name | None = None
    consent: Consent = Field(default_factory=Consent)
    acquisition: Acquisition = Field(default_factory=Acquisition)
    activity: Activity = Field(default_factory=Activity)
    commerce: Commerce = Field(default_factory=Commerce)
    cart: Cart = Field(default_factory=Cart)
    email_engagement: EmailEngagement = Field(default_factory=EmailEngagement)
    support: Support = Field(default_factory=Support)
    referrals: Referrals = Field(default_factory=Referrals)
    loyalty: Loyalty = Field(default_factory=Loyalty)

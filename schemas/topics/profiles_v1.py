"""profiles.v1 (compacted, keyed by customer id): the latest profile snapshot per customer.

A null value (tombstone) means the customer was erased. Money is an exact decimal string:
a profile sums many events, and float sums depend on their order, which a fold must not.

Lists and maps that grow with a customer's history are capped (the MAX_* constants below) so
the largest possible snapshot stays far below Kafka's 1 MB message limit. Beside each one a
`*_count` field gives the full number when entries were left out; it is null when none were,
as in every snapshot written before the caps existed.
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from schemas._types import (
    MAX_ID,
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

MAX_LISTED_IDS = 100
MAX_LISTED_PRODUCTS = 200
MAX_LISTED_CATEGORIES = 200
MAX_CART_LINES = 100
MAX_LISTED_CURRENCIES = 20
MAX_TRAITS = 200
# Binds only for long or heavily escaped strings (a control character takes 6 bytes in JSON);
# it holds the 8 capped collections to 512 KiB together, whatever they contain.
MAX_COLLECTION_BYTES = 64 * 1024

# Product ids (or SKUs) as events name them; an SDK may send "".
ProductKey = Annotated[str, Field(max_length=MAX_ID)]


def _full_count(what: str) -> Any:
    """The `*_count` field beside a capped collection."""
    return Field(
        default=None, description=f"The number of {what} when some are left out; else null."
    )


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
    cart_adds: Count = Field(default=0, description="Product Added events.")
    checkouts_started: Count = Field(default=0, description="Checkout Started events.")
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
    products_purchased: list[ProductKey] = Field(
        default_factory=list,
        description=(
            f"Product ids (else SKUs), sorted; at most {MAX_LISTED_PRODUCTS}, the most recently "
            "bought."
        ),
    )
    products_purchased_count: Count | None = _full_count("products bought")
    categories_purchased: list[Text] = Field(
        default_factory=list,
        description=f"Sorted; at most {MAX_LISTED_CATEGORIES}, the most recently bought.",
    )
    categories_purchased_count: Count | None = _full_count("categories bought")
    revenue_by_currency: dict[str, Money] = Field(
        default_factory=dict,
        description=(
            "Net revenue in each currency the customer ordered in; the money fields above count "
            "only orders in `currency`, the customer's main currency. At most "
            f"{MAX_LISTED_CURRENCIES}: `currency`, then the largest amounts."
        ),
    )
    currencies_count: Count | None = _full_count("currencies ordered in")


class Cart(TopicModel):
    """The open cart: what was added and not yet bought or removed."""

    cart_id: OptionalId = None
    items: list[CartItem] = Field(
        default_factory=list,
        description=(
            f"One line per product, sorted by product; at most {MAX_CART_LINES}, the most "
            "recently added."
        ),
    )
    lines_count: Count | None = _full_count("lines in the cart")
    items_count: Count = Field(default=0, description="Units over every line, listed or not.")
    value: Money = Field(
        default=ZERO, description="Price times units over every line, listed or not; exact."
    )
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
    """What the customers this customer referred bought. Currencies are never added together."""

    referred_customers_count: Count = 0
    referred_revenue: Money = Field(
        default=ZERO, description="Net revenue of the referred customers in `currency`."
    )
    currency: Currency | None = Field(
        default=None,
        description=(
            "Currency of `referred_revenue`: this customer's main currency (commerce.currency) "
            "if the referred customers bought in it, else the one with the largest referred "
            "revenue (a tie goes to the alphabetically first); null when they bought nothing."
        ),
    )
    revenue_by_currency: dict[str, Money] = Field(
        default_factory=dict,
        description=(
            "Net revenue of the referred customers in each currency they bought in; at most "
            f"{MAX_LISTED_CURRENCIES}: `currency`, then the largest amounts."
        ),
    )
    currencies_count: Count | None = _full_count("currencies the referred customers bought in")


class Loyalty(TopicModel):
    points_earned: Count = 0
    points_redeemed: Count = 0
    points_balance: int = 0


class ProfileSnapshot(TopicModel):
    """A customer's profile.

    Lists and maps that grow with the customer's history are capped so a snapshot always fits
    in a Kafka message: each holds at most its stated number of entries and 64 KiB of JSON, and
    its `*_count` field gives the full number when entries were left out (null when all are).
    """

    customer_id: Id = Field(description="Retain's internal customer id; the message key.")
    revision: Count = Field(
        description="Grows with every change to this profile; consumers keep the highest seen."
    )
    updated_at: UtcDatetime = Field(description="When the profile service wrote this snapshot.")
    user_id: OptionalId = None
    anonymous_ids: list[Id] = Field(
        default_factory=list,
        description=f"Sorted; at most {MAX_LISTED_IDS}, the first in sorted order.",
    )
    anonymous_ids_count: Count | None = _full_count("anonymous ids")
    merged_customer_ids: list[Id] = Field(
        default_factory=list,
        description=(
            "Customer ids merged into this one; they resolve here. Sorted; at most "
            f"{MAX_LISTED_IDS}, the first in sorted order."
        ),
    )
    merged_customer_ids_count: Count | None = _full_count("customer ids merged into this one")
    email: Email | None = None
    traits: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            f"Latest value of each trait by event time; at most {MAX_TRAITS} traits, the most "
            "recently set (a trait too large for the bytes left is left out)."
        ),
    )
    traits_count: Count | None = _full_count("traits")
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

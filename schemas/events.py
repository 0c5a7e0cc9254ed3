"""Typed track events: Segment E-commerce spec v2 names and properties, plus lifecycle events.

A track event whose name is in `TYPED_EVENTS` has its properties validated by that event's
model; any other name is a generic `TrackEvent` with free-form properties. Names match exactly
(case-sensitive), as in the Segment spec.
"""

from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from schemas._types import (
    MAX_LIST,
    MAX_NAME,
    Amount,
    Currency,
    Email,
    Id,
    LongText,
    OptionalId,
    Text,
    Url,
)
from schemas.segment import TrackBase

Quantity = Annotated[int, Field(ge=0, le=1_000_000)]
Position = Annotated[int, Field(ge=0, le=1_000_000)]
Rating = Annotated[float, Field(ge=0, le=5)]


class Properties(BaseModel):
    """Base of every typed properties model: unknown properties are kept, as Segment keeps them."""

    model_config = ConfigDict(extra="allow")


class Product(Properties):
    product_id: OptionalId = None
    sku: OptionalId = None
    category: Text | None = None
    name: Text | None = None
    brand: Text | None = None
    variant: Text | None = None
    price: Amount | None = None
    quantity: Quantity | None = None
    coupon: Text | None = None
    position: Position | None = None
    url: Url | None = None
    image_url: Url | None = None


Products = Annotated[list[Product], Field(max_length=MAX_LIST)]


class ProductViewed(Product):
    currency: Currency | None = None
    value: Amount | None = None


class ProductAdded(Product):
    cart_id: OptionalId = None


class ProductRemoved(Product):
    cart_id: OptionalId = None


class CartViewed(Properties):
    cart_id: OptionalId = None
    products: Products | None = None


class _Order(Properties):
    """Order fields shared by checkout and order events (all optional here)."""

    order_id: OptionalId = None
    checkout_id: OptionalId = None
    affiliation: Text | None = None
    total: Amount | None = None
    subtotal: Amount | None = None
    revenue: Amount | None = None
    shipping: Amount | None = None
    tax: Amount | None = None
    discount: Amount | None = None
    coupon: Text | None = None
    currency: Currency | None = None
    products: Products | None = None


class CheckoutStarted(_Order):
    value: Amount | None = None


class OrderCompleted(_Order):
    order_id: Id
    currency: Currency
    products: Products

    @model_validator(mode="after")
    def _has_amount(self) -> Self:
        if self.revenue is None and self.total is None:
            raise PydanticCustomError(
                "missing_amount", "revenue or total is required", {"field": "revenue"}
            )
        return self


class OrderRefunded(_Order):
    """A full refund when neither `total` nor `products` is given; otherwise partial."""

    order_id: Id


class OrderCancelled(_Order):
    order_id: Id


class CouponApplied(Properties):
    order_id: OptionalId = None
    cart_id: OptionalId = None
    coupon_id: OptionalId = None
    coupon_name: Text | None = None
    discount: Amount | None = None


class SignedUp(Properties):
    type: Text | None = None  # how they signed up, e.g. "organic", "invited"
    email: Email | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    username: Text | None = None
    phone: Text | None = None
    title: Text | None = None
    referral_code: OptionalId = None


class _Email(Properties):
    email_id: OptionalId = None
    email_subject: Text | None = None
    campaign_id: OptionalId = None
    campaign_name: Text | None = None


class EmailOpened(_Email):
    pass


class EmailLinkClicked(_Email):
    link_id: OptionalId = None
    link_url: Url | None = None


class Unsubscribed(_Email):
    list_id: OptionalId = None
    list_name: Text | None = None


class ReferralCodeUsed(Properties):
    referral_code: Id
    referrer_id: OptionalId = None  # userId of the customer who shared the code
    order_id: OptionalId = None


class ReviewSubmitted(Properties):
    review_id: OptionalId = None
    product_id: OptionalId = None
    order_id: OptionalId = None
    rating: Rating | None = None  # stars, 0 to 5
    review_body: LongText | None = None


class SupportTicketOpened(Properties):
    ticket_id: Id
    subject: Text | None = None
    channel: Text | None = None  # e.g. "email", "chat", "phone"
    category: Text | None = None
    priority: Text | None = None


class SupportTicketResolved(Properties):
    ticket_id: Id
    resolution: Text | None = None
    satisfaction: Rating | None = None


P = TypeVar("P", bound=Properties)


class TypedTrackEvent(TrackBase, Generic[P]):
    """A track event whose name is in the registry; `properties` is that event's model."""

    # Absent properties are validated as {} so a missing required property names itself.
    properties: P = Field(default_factory=dict, validate_default=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names = get_args(cls.model_fields["event"].annotation)
        if len(names) == 1:
            cls.union_tag = f"event:{names[0]}"


class ProductViewedEvent(TypedTrackEvent[ProductViewed]):
    event: Literal["Product Viewed"]


class ProductAddedEvent(TypedTrackEvent[ProductAdded]):
    event: Literal["Product Added"]


class ProductRemovedEvent(TypedTrackEvent[ProductRemoved]):
    event: Literal["Product Removed"]


class CartViewedEvent(TypedTrackEvent[CartViewed]):
    event: Literal["Cart Viewed"]


class CheckoutStartedEvent(TypedTrackEvent[CheckoutStarted]):
    event: Literal["Checkout Started"]


class OrderCompletedEvent(TypedTrackEvent[OrderCompleted]):
    event: Literal["Order Completed"]


class OrderRefundedEvent(TypedTrackEvent[OrderRefunded]):
    event: Literal["Order Refunded"]


class OrderCancelledEvent(TypedTrackEvent[OrderCancelled]):
    event: Literal["Order Cancelled"]


class CouponAppliedEvent(TypedTrackEvent[CouponApplied]):
    event: Literal["Coupon Applied"]


class SignedUpEvent(TypedTrackEvent[SignedUp]):
    event: Literal["Signed Up"]


class EmailOpenedEvent(TypedTrackEvent[EmailOpened]):
    event: Literal["Email Opened"]


class EmailLinkClickedEvent(TypedTrackEvent[EmailLinkClicked]):
    event: Literal["Email Link Clicked"]


class UnsubscribedEvent(TypedTrackEvent[Unsubscribed]):
    event: Literal["Unsubscribed"]


class ReferralCodeUsedEvent(TypedTrackEvent[ReferralCodeUsed]):
    event: Literal["Referral Code Used"]


class ReviewSubmittedEvent(TypedTrackEvent[ReviewSubmitted]):
    event: Literal["Review Submitted"]


class SupportTicketOpenedEvent(TypedTrackEvent[SupportTicketOpened]):
    event: Literal["Support Ticket Opened"]


class SupportTicketResolvedEvent(TypedTrackEvent[SupportTicketResolved]):
    event: Literal["Support Ticket Resolved"]


TYPED_EVENT_CLASSES: tuple[type[TypedTrackEvent[Any]], ...] = (
    ProductViewedEvent,
    ProductAddedEvent,
    ProductRemovedEvent,
    CartViewedEvent,
    CheckoutStartedEvent,
    OrderCompletedEvent,
    OrderRefundedEvent,
    OrderCancelledEvent,
    CouponAppliedEvent,
    SignedUpEvent,
    EmailOpenedEvent,
    EmailLinkClickedEvent,
    UnsubscribedEvent,
    ReferralCodeUsedEvent,
    ReviewSubmittedEvent,
    SupportTicketOpenedEvent,
    SupportTicketResolvedEvent,
)


TYPED_EVENTS: dict[str, type[TypedTrackEvent[Any]]] = {
    cls.union_tag.removeprefix("event:"): cls for cls in TYPED_EVENT_CLASSES
}
"""Event name -> typed event class."""

EVENT_PROPERTIES: dict[str, type[Properties]] = {
    name: cast(type[Properties], cls.model_fields["properties"].annotation)
    for name, cls in TYPED_EVENTS.items()
}
"""Event name -> properties model: the registry of typed events."""


_TYPED_NAMES: list[JsonValue] = []
_TYPED_NAMES.extend(sorted(TYPED_EVENTS))


class TrackEvent(TrackBase):
    """A track event with any other name: properties are free-form."""

    union_tag: ClassVar[str] = "type:track"
    # The schema excludes typed names so a JSON Schema validator picks exactly one union member.
    event: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        json_schema_extra={"not": {"enum": _TYPED_NAMES}},
    )
    properties: dict[str, Any] | None = None

"""The profile state: everything a snapshot needs, kept in a form that merges.

Every field combines with an operation that is commutative and associative, so the state is a
function of the set of events folded into it, whatever their order or grouping:

- registers are last-writer-wins (or first-writer-wins) by (event time, messageId): messageIds
  are unique, so two different events never tie;
- per-event records (refunds, cart changes) are maps keyed by messageId, orders by order id;
- sets are unions, first/last times are min/max, counters are sums over distinct events.

Everything except the counters is also idempotent (merging a state with itself changes
nothing); counters cannot be, and need not be: each event is folded exactly once.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

from schemas._types import ZERO

Channel = Literal[
    "direct", "search", "paid_search", "social", "email", "referral", "affiliate", "other"
]

T = TypeVar("T")
# Bumped when the stored JSON changes shape; from_json reads every earlier version it knows.
JSON_VERSION = 1


class _Keyed(Protocol):
    @property
    def key(self) -> tuple[Any, ...]: ...


K = TypeVar("K", bound=_Keyed)


def latest(a: K | None, b: K | None) -> K | None:
    """The record with the greater key (last writer wins)."""
    if a is None:
        return b
    if b is None or a.key >= b.key:
        return a
    return b


def earliest(a: K | None, b: K | None) -> K | None:
    """The record with the smaller key (first writer wins)."""
    if a is None:
        return b
    if b is None or a.key <= b.key:
        return a
    return b


def min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


@dataclass(frozen=True, slots=True)
class Register(Generic[T]):
    """A value written by one event; registers merge by (event time, messageId)."""

    at: datetime
    message_id: str
    value: T

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.at, self.message_id)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One statement of email-marketing consent; the latest by event time is in force."""

    at: datetime
    message_id: str
    opted_in: bool
    source: str

    @property
    def key(self) -> tuple[datetime, bool, str]:
        # At the same instant an opt-out beats an opt-in: when in doubt, do not email.
        return (self.at, not self.opted_in, self.message_id)


@dataclass(frozen=True, slots=True)
class Touch:
    """A visit with attribution data, classified when folded; the earliest one is first touch."""

    at: datetime
    message_id: str
    channel: Channel
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None
    referrer_url: str | None = None
    landing_page_url: str | None = None

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.at, self.message_id)


@dataclass(frozen=True, slots=True)
class Item:
    """A product line of an order or a cart."""

    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    quantity: int = 1
    price: Decimal | None = None  # per unit, exact


@dataclass(frozen=True, slots=True)
class Order:
    """The latest Order Completed event for an order id, and when the order was first seen."""

    order_id: str
    at: datetime
    message_id: str
    first_at: datetime  # earliest Order Completed for the id: a resent event keeps the date
    revenue: Decimal
    currency: str
    items: tuple[Item, ...] = ()

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.at, self.message_id)


def merge_orders(a: Order | None, b: Order) -> Order:
    if a is None:
        return b
    winner = latest(a, b)
    assert winner is not None
    first = min(a.first_at, b.first_at)
    return winner if winner.first_at == first else replace(winner, first_at=first)


@dataclass(frozen=True, slots=True)
class Refund:
    order_id: str
    amount: Decimal | None  # None: the whole order


@dataclass(frozen=True, slots=True)
class CartChange:
    """A Product Added (item set) or Product Removed (item None) event."""

    at: datetime
    message_id: str
    product_key: str  # productId, else sku, else name
    quantity: int | None  # units added or removed; None removes the whole line
    item: Item | None = None
    cart_id: str | None = None
    currency: str | None = None

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.at, self.message_id)


@dataclass
class ProfileState:
    """A customer's profile as mergeable data. Treat as immutable: fold and merge copy it."""

    # identity
    user_id: Register[str] | None = None
    user_ids: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    aliased_ids: set[str] = field(default_factory=set)  # previousId of alias events
    email: Register[str] | None = None
    traits: dict[str, Register[Any]] = field(default_factory=dict)
    timezone: Register[str] | None = None
    locale: Register[str] | None = None
    consent: ConsentRecord | None = None
    # acquisition: first writer wins
    first_touch: Touch | None = None
    referral_code: Register[str] | None = None
    referrer_user_id: Register[str] | None = None
    affiliate: Register[str] | None = None
    signed_up: Register[str] | None = None  # the first Signed Up; value: how ("" if unsaid)
    # activity
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    page_views: int = 0
    product_views: int = 0
    cart_adds: int = 0
    checkouts_started: int = 0
    active_days: set[str] = field(default_factory=set)  # ISO dates, UTC
    # commerce
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)  # by messageId
    cancellations: dict[str, datetime] = field(default_factory=dict)  # order id -> earliest
    # cart: only changes after the latest order, which emptied the cart before it
    cart: dict[str, CartChange] = field(default_factory=dict)  # by messageId
    cart_cleared_at: datetime | None = None
    cart_activity: Register[str] | None = None  # value: the event name
    checkout_started_at: datetime | None = None
    # email engagement
    emails_sent: int = 0
    emails_opened: int = 0
    emails_clicked: int = 0
    last_email_sent_at: datetime | None = None
    last_email_opened_at: datetime | None = None
    last_email_clicked_at: datetime | None = None
    # support and reviews
    tickets_opened: set[str] = field(default_factory=set)
    tickets_resolved: set[str] = field(default_factory=set)
    reviews: int = 0
    ratings: int = 0
    rating_sum: Decimal = ZERO
    # loyalty
    points_redeemed: int = 0

    def copy(self) -> "ProfileState":
        """A copy whose containers can be changed without touching this one (records are frozen)."""
        # Copying __dict__ is several times faster than dataclasses.replace; fold calls it per
        # customer and batch.
        out = object.__new__(ProfileState)
        out.__dict__.update(self.__dict__)
        for name in _CONTAINERS:
            setattr(out, name, getattr(self, name).copy())
        return out

    def absorb(self, other: "ProfileState") -> None:
        """Merge `other` into this state in place (callers own this state: see `merge`)."""
        self.user_id = latest(self.user_id, other.user_id)
        self.user_ids |= other.user_ids
        self.anonymous_ids |= other.anonymous_ids
        self.aliased_ids |= other.aliased_ids
        self.email = latest(self.email, other.email)
        for name, trait in other.traits.items():
            self.traits[name] = latest(self.traits.get(name), trait) or trait
        self.timezone = latest(self.timezone, other.timezone)
        self.locale = latest(self.locale, other.locale)
        self.consent = latest(self.consent, other.consent)
        self.first_touch = earliest(self.first_touch, other.first_touch)
        self.referral_code = earliest(self.referral_code, other.referral_code)
        self.referrer_user_id = earliest(self.referrer_user_id, other.referrer_user_id)
        self.affiliate = earliest(self.affiliate, other.affiliate)
        self.signed_up = earliest(self.signed_up, other.signed_up)
        self.first_seen_at = min_time(self.first_seen_at, other.first_seen_at)
        self.last_seen_at = max_time(self.last_seen_at, other.last_seen_at)
        self.page_views += other.page_views
        self.product_views += other.product_views
        self.cart_adds += other.cart_adds
        self.checkouts_started += other.checkouts_started
        self.active_days |= other.active_days
        for order_id, order in other.orders.items():
            self.orders[order_id] = merge_orders(self.orders.get(order_id), order)
        self.refunds.update(other.refunds)
        for order_id, at in other.cancellations.items():
            mine = self.cancellations.get(order_id)
            self.cancellations[order_id] = at if mine is None else min(mine, at)
        self.cart.update(other.cart)
        self.cart_cleared_at = max_time(self.cart_cleared_at, other.cart_cleared_at)
        self.cart_activity = latest(self.cart_activity, other.cart_activity)
        self.checkout_started_at = max_time(self.checkout_started_at, other.checkout_started_at)
        self.emails_sent += other.emails_sent
        self.emails_opened += other.emails_opened
        self.emails_clicked += other.emails_clicked
        self.last_email_sent_at = max_time(self.last_email_sent_at, other.last_email_sent_at)
        self.last_email_opened_at = max_time(self.last_email_opened_at, other.last_email_opened_at)
        self.last_email_clicked_at = max_time(
            self.last_email_clicked_at, other.last_email_clicked_at
        )
        self.tickets_opened |= other.tickets_opened
        self.tickets_resolved |= other.tickets_resolved
        self.reviews += other.reviews
        self.ratings += other.ratings
        self.rating_sum += other.rating_sum
        self.points_redeemed += other.points_redeemed
        self.compact()

    def compact(self) -> None:
        """Drop cart changes the latest order emptied: they can never count again.

        Safe in any order because the clearing time only grows.
        """
        cleared = self.cart_cleared_at
        if cleared is not None and self.cart:
            stale = [mid for mid, change in self.cart.items() if change.at <= cleared]
            for mid in stale:
                del self.cart[mid]

    # JSON for the JSONB column: only JSON-native values; Decimals and datetimes as strings.

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "user_id": _reg_out(self.user_id),
            "user_ids": sorted(self.user_ids),
            "anonymous_ids": sorted(self.anonymous_ids),
            "aliased_ids": sorted(self.aliased_ids),
            "email": _reg_out(self.email),
            "traits": {name: _reg_out(reg) for name, reg in sorted(self.traits.items())},
            "timezone": _reg_out(self.timezone),
            "locale": _reg_out(self.locale),
            "consent": None if self.consent is None else _consent_out(self.consent),
            "first_touch": None if self.first_touch is None else _touch_out(self.first_touch),
            "referral_code": _reg_out(self.referral_code),
            "referrer_user_id": _reg_out(self.referrer_user_id),
            "affiliate": _reg_out(self.affiliate),
            "signed_up": _reg_out(self.signed_up),
            "first_seen_at": _time_out(self.first_seen_at),
            "last_seen_at": _time_out(self.last_seen_at),
            "page_views": self.page_views,
            "product_views": self.product_views,
            "cart_adds": self.cart_adds,
            "checkouts_started": self.checkouts_started,
            "active_days": sorted(self.active_days),
            "orders": {oid: _order_out(order) for oid, order in sorted(self.orders.items())},
            "refunds": {
                mid: {"order_id": r.order_id, "amount": _dec_out(r.amount)}
                for mid, r in sorted(self.refunds.items())
            },
            "cancellations": {
                oid: at.isoformat() for oid, at in sorted(self.cancellations.items())
            },
            "cart": {mid: _cart_out(change) for mid, change in sorted(self.cart.items())},
            "cart_cleared_at": _time_out(self.cart_cleared_at),
            "cart_activity": _reg_out(self.cart_activity),
            "checkout_started_at": _time_out(self.checkout_started_at),
            "emails_sent": self.emails_sent,
            "emails_opened": self.emails_opened,
            "emails_clicked": self.emails_clicked,
            "last_email_sent_at": _time_out(self.last_email_sent_at),
            "last_email_opened_at": _time_out(self.last_email_opened_at),
            "last_email_clicked_at": _time_out(self.last_email_clicked_at),
            "tickets_opened": sorted(self.tickets_opened),
            "tickets_resolved": sorted(self.tickets_resolved),
            "reviews": self.reviews,
            "ratings": self.ratings,
            "rating_sum": str(self.rating_sum),
            "points_redeemed": self.points_redeemed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The state `to_json` wrote; absent keys take their defaults, so fields can be added."""
        version = data.get("version", JSON_VERSION)
        if version != JSON_VERSION:
            raise ValueError(f"profile state version {version} is not {JSON_VERSION}")
        get = data.get
        return cls(
            user_id=_reg_in(get("user_id"), str),
            user_ids=set(get("user_ids") or ()),
            anonymous_ids=set(get("anonymous_ids") or ()),
            aliased_ids=set(get("aliased_ids") or ()),
            email=_reg_in(get("email"), str),
            traits={name: _reg_req(raw, _any) for name, raw in (get("traits") or {}).items()},
            timezone=_reg_in(get("timezone"), str),
            locale=_reg_in(get("locale"), str),
            consent=_opt(get("consent"), _consent_in),
            first_touch=_opt(get("first_touch"), _touch_in),
            referral_code=_reg_in(get("referral_code"), str),
            referrer_user_id=_reg_in(get("referrer_user_id"), str),
            affiliate=_reg_in(get("affiliate"), str),
            signed_up=_reg_in(get("signed_up"), str),
            first_seen_at=_time_in(get("first_seen_at")),
            last_seen_at=_time_in(get("last_seen_at")),
            page_views=int(get("page_views", 0)),
            product_views=int(get("product_views", 0)),
            cart_adds=int(get("cart_adds", 0)),
            checkouts_started=int(get("checkouts_started", 0)),
            active_days=set(get("active_days") or ()),
            orders={oid: _order_in(oid, raw) for oid, raw in (get("orders") or {}).items()},
            refunds={
                mid: Refund(order_id=raw["order_id"], amount=_dec_in(raw.get("amount")))
                for mid, raw in (get("refunds") or {}).items()
            },
            cancellations={
                oid: datetime.fromisoformat(at) for oid, at in (get("cancellations") or {}).items()
            },
            cart={mid: _cart_in(mid, raw) for mid, raw in (get("cart") or {}).items()},
            cart_cleared_at=_time_in(get("cart_cleared_at")),
            cart_activity=_reg_in(get("cart_activity"), str),
            checkout_started_at=_time_in(get("checkout_started_at")),
            emails_sent=int(get("emails_sent", 0)),
            emails_opened=int(get("emails_opened", 0)),
            emails_clicked=int(get("emails_clicked", 0)),
            last_email_sent_at=_time_in(get("last_email_sent_at")),
            last_email_opened_at=_time_in(get("last_email_opened_at")),
            last_email_clicked_at=_time_in(get("last_email_clicked_at")),
            tickets_opened=set(get("tickets_opened") or ()),
            tickets_resolved=set(get("tickets_resolved") or ()),
            reviews=int(get("reviews", 0)),
            ratings=int(get("ratings", 0)),
            rating_sum=Decimal(get("rating_sum", "0")),
            points_redeemed=int(get("points_redeemed", 0)),
        )


# Every set and dict field: what a copy must not share (derived, so a new field is not missed).
_CONTAINERS = tuple(f.name for f in fields(ProfileState) if f.default_factory in (set, dict))


def merge(a: ProfileState, b: ProfileState) -> ProfileState:
    """One profile from two found to be the same customer; neither argument is changed.

    For disjoint event sets A and B: merge(fold(empty, A), fold(empty, B)) == fold(empty, A | B).
    """
    out = a.copy()
    out.absorb(b)
    return out


# JSON codecs of the records. Keys are short but readable: states are stored per customer.

R = TypeVar("R")


def _opt(raw: Any, decode: Callable[[Any], R]) -> R | None:
    return None if raw is None else decode(raw)


def _any(value: Any) -> Any:
    return value


def _time_out(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_in(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def _dec_out(value: Decimal | None) -> str | None:
    # str() keeps the exponent, so the round trip gives back an identical Decimal.
    return None if value is None else str(value)


def _dec_in(raw: str | None) -> Decimal | None:
    return None if raw is None else Decimal(raw)


def _reg_out(reg: Register[Any] | None) -> dict[str, Any] | None:
    if reg is None:
        return None
    return {"at": reg.at.isoformat(), "message_id": reg.message_id, "value": reg.value}


def _reg_req(raw: Mapping[str, Any], decode: Callable[[Any], R]) -> Register[R]:
    return Register(
        at=datetime.fromisoformat(raw["at"]),
        message_id=raw["message_id"],
        value=decode(raw["value"]),
    )


def _reg_in(raw: Mapping[str, Any] | None, decode: Callable[[Any], R]) -> Register[R] | None:
    return None if raw is None else _reg_req(raw, decode)


def _consent_out(record: ConsentRecord) -> dict[str, Any]:
    return {
        "at": record.at.isoformat(),
        "message_id": record.message_id,
        "opted_in": record.opted_in,
        "source": record.source,
    }


def _consent_in(raw: Mapping[str, Any]) -> ConsentRecord:
    return ConsentRecord(
        at=datetime.fromisoformat(raw["at"]),
        message_id=raw["message_id"],
        opted_in=bool(raw["opted_in"]),
        source=raw["source"],
    )


_TOUCH_TEXT = (
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "referrer_url",
    "landing_page_url",
)


def _touch_out(touch: Touch) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": touch.at.isoformat(),
        "message_id": touch.message_id,
        "channel": touch.channel,
    }
    for name in _TOUCH_TEXT:
        out[name] = getattr(touch, name)
    return out


def _touch_in(raw: Mapping[str, Any]) -> Touch:
    return Touch(
        at=datetime.fromisoformat(raw["at"]),
        message_id=raw["message_id"],
        channel=raw["channel"],
        **{name: raw.get(name) for name in _TOUCH_TEXT},
    )


def _item_out(item: Item) -> dict[str, Any]:
    return {
        "product_id": item.product_id,
        "sku": item.sku,
        "name": item.name,
        "category": item.category,
        "quantity": item.quantity,
        "price": _dec_out(item.price),
    }


def _item_in(raw: Mapping[str, Any]) -> Item:
    return Item(
        product_id=raw.get("product_id"),
        sku=raw.get("sku"),
        name=raw.get("name"),
        category=raw.get("category"),
        quantity=int(raw.get("quantity", 1)),
        price=_dec_in(raw.get("price")),
    )


def _order_out(order: Order) -> dict[str, Any]:
    return {
        "at": order.at.isoformat(),
        "message_id": order.message_id,
        "first_at": order.first_at.isoformat(),
        "revenue": str(order.revenue),
        "currency": order.currency,
        "items": [_item_out(item) for item in order.items],
    }


def _order_in(order_id: str, raw: Mapping[str, Any]) -> Order:
    return Order(
        order_id=order_id,
        at=datetime.fromisoformat(raw["at"]),
        message_id=raw["message_id"],
        first_at=datetime.fromisoformat(raw["first_at"]),
        revenue=Decimal(raw["revenue"]),
        currency=raw["currency"],
        items=tuple(_item_in(item) for item in raw.get("items") or ()),
    )


def _cart_out(change: CartChange) -> dict[str, Any]:
    return {
        "at": change.at.isoformat(),
        "product_key": change.product_key,
        "quantity": change.quantity,
        "item": None if change.item is None else _item_out(change.item),
        "cart_id": change.cart_id,
        "currency": change.currency,
    }


def _cart_in(message_id: str, raw: Mapping[str, Any]) -> CartChange:
    item = raw.get("item")
    return CartChange(
        at=datetime.fromisoformat(raw["at"]),
        message_id=message_id,
        product_key=raw["product_key"],
        quantity=raw.get("quantity"),
        item=None if item is None else _item_in(item),
        cart_id=raw.get("cart_id"),
        currency=raw.get("currency"),
    )

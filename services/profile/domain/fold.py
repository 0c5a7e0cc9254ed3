"""Folding touchpoints into a profile state.

Each event adds to the state through a mergeable field (see state.py), so the result depends
only on the set of events. Events Retain reads beyond the typed ones, by name:

- "Email Sent" / "Email Delivered": a marketing or transactional email reached the customer;
- "Loyalty Points Redeemed" with `properties.points` (a whole number >= 0).

The affiliate is the earliest one named: a link tagged utm_medium=affiliate (its utm_source),
or the `affiliation` of a checkout or order.

Consent (email marketing) comes from:

- an Unsubscribed event: opted out;
- identify traits or Signed Up properties `email_marketing_consent`, `marketing_opt_in`,
  `email_opt_in`, `accepts_marketing` (true/false; camelCase too), or `unsubscribed` /
  `email_opt_out` (true = opted out).

The latest statement by event time is in force, and an opt-out wins a tie. Segment's
context.consent is not read: it reflects the site's cookie banner, sent with every event,
and would silently undo an unsubscribe.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic_core import to_jsonable_python

from schemas._types import EMAIL_PATTERN, MAX_TEXT, exact
from schemas.events import (
    CheckoutStartedEvent,
    EmailLinkClickedEvent,
    EmailOpenedEvent,
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderRefundedEvent,
    Product,
    ProductAddedEvent,
    ProductRemovedEvent,
    ProductViewedEvent,
    ReferralCodeUsedEvent,
    ReviewSubmittedEvent,
    SignedUpEvent,
    SupportTicketOpenedEvent,
    SupportTicketResolvedEvent,
    TrackEvent,
    UnsubscribedEvent,
)
from schemas.parse import SegmentEvent
from schemas.segment import AliasEvent, IdentifyEvent, PageEvent, ScreenEvent
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain.channels import campaign_affiliate, classify
from services.profile.domain.identity import event_key, event_uid
from services.profile.domain.state import (
    CartChange,
    ConsentRecord,
    Item,
    Order,
    ProfileState,
    Refund,
    Register,
    Touch,
    earliest,
    latest,
    max_time,
    merge_orders,
)

EMAIL_SENT_EVENTS = frozenset({"Email Sent", "Email Delivered"})
POINTS_REDEEMED_EVENT = "Loyalty Points Redeemed"
MAX_POINTS = 1_000_000_000_000

CONSENT_TRAITS_IN = (
    "email_marketing_consent",
    "emailMarketingConsent",
    "marketing_opt_in",
    "marketingOptIn",
    "email_opt_in",
    "emailOptIn",
    "accepts_marketing",
    "acceptsMarketing",
)
CONSENT_TRAITS_OUT = ("unsubscribed", "email_opt_out", "emailOptOut")
_CONSENT_KEYS = frozenset(CONSENT_TRAITS_IN + CONSENT_TRAITS_OUT)
_YES = frozenset({"true", "yes", "1", "opted_in", "subscribed", "granted"})
_NO = frozenset({"false", "no", "0", "opted_out", "unsubscribed", "denied"})

_EMAIL_MAX = 254
_EMAIL_RE = re.compile(EMAIL_PATTERN)


def fold(state: ProfileState, touchpoints: Iterable[Touchpoint]) -> ProfileState:
    """`state` with `touchpoints` added; `state` itself is not changed.

    An event is identified by its source and messageId (`event_key`), as in the store: seen
    twice in `touchpoints` it counts once, while two sources that send the same messageId send
    two events. Across calls the caller passes only events not folded before (the store's
    unique key tells it which).
    """
    out = state.copy()
    seen: set[tuple[str, str]] = set()
    for tp in touchpoints:
        key = event_key(tp)
        if key in seen:
            continue
        seen.add(key)
        _apply(out, tp)
    out.compact()
    return out


def _apply(s: ProfileState, tp: Touchpoint) -> None:
    # The hot path: comparisons first, records built only when they win.
    at = tp.timestamp
    # The event's id in records and maps: unique across sources, so the fold cannot mistake two
    # events for one, and ties between registers break the same way in any order.
    mid = event_uid(tp)
    ev = tp.event
    key = (at, mid)
    if s.first_seen_at is None or at < s.first_seen_at:
        s.first_seen_at = at
    if s.last_seen_at is None or at > s.last_seen_at:
        s.last_seen_at = at
    s.active_days.add(at.date().isoformat())
    user_id = ev.user_id
    if user_id is not None:
        s.user_ids.add(user_id)
        if s.user_id is None or key > s.user_id.key:
            s.user_id = Register(at, mid, user_id)
    if ev.anonymous_id is not None:
        s.anonymous_ids.add(ev.anonymous_id)
    context = ev.context
    if context:
        zone = context.get("timezone")
        if zone and (s.timezone is None or key > s.timezone.key):
            s.timezone = Register(at, mid, zone)
        locale = context.get("locale")
        if locale and (s.locale is None or key > s.locale.key):
            s.locale = Register(at, mid, locale)
        campaign = context.get("campaign")
        if campaign:
            _affiliate(s, campaign_affiliate(campaign), at, mid)
    # Classify only a visit that could become the first touch.
    if s.first_touch is None or key < s.first_touch.key:
        touch = _touch(ev, at, mid)
        if touch is not None:
            s.first_touch = touch
    handler = _HANDLERS.get(type(ev))
    if handler is not None:
        handler(s, ev, at, mid)


# Handlers: one per event class, each given the state to change, the event, its time and id.

Handler = Callable[[ProfileState, Any, datetime, str], None]


def _identify(s: ProfileState, ev: IdentifyEvent, at: datetime, mid: str) -> None:
    traits = ev.traits
    if not traits:
        return
    for name, value in traits.items():
        reg = Register(at, mid, to_jsonable_python(value))
        s.traits[name] = latest(s.traits.get(name), reg) or reg
    _email(s, traits.get("email"), at, mid)
    _consent_from(s, traits, at, mid, "identify")


def _alias(s: ProfileState, ev: AliasEvent, at: datetime, mid: str) -> None:
    s.aliased_ids.add(ev.previous_id)


def _page(s: ProfileState, ev: PageEvent | ScreenEvent, at: datetime, mid: str) -> None:
    s.page_views += 1


def _product_viewed(s: ProfileState, ev: ProductViewedEvent, at: datetime, mid: str) -> None:
    s.product_views += 1


def _product_added(s: ProfileState, ev: ProductAddedEvent, at: datetime, mid: str) -> None:
    s.cart_adds += 1
    p = ev.properties
    item = _item(p)
    key = p.product_id or p.sku or p.name
    _cart_touched(s, at, mid, ev.event)
    if key is None:
        return  # nothing to match a later removal against
    s.cart[mid] = CartChange(
        at=at,
        message_id=mid,
        product_key=key,
        quantity=item.quantity,
        item=item,
        cart_id=p.cart_id,
        currency=_currency((p.model_extra or {}).get("currency")),
    )


def _product_removed(s: ProfileState, ev: ProductRemovedEvent, at: datetime, mid: str) -> None:
    p = ev.properties
    key = p.product_id or p.sku or p.name
    _cart_touched(s, at, mid, ev.event)
    if key is None:
        return
    s.cart[mid] = CartChange(
        at=at, message_id=mid, product_key=key, quantity=p.quantity, cart_id=p.cart_id
    )


def _checkout_started(s: ProfileState, ev: CheckoutStartedEvent, at: datetime, mid: str) -> None:
    s.checkouts_started += 1
    s.checkout_started_at = max_time(s.checkout_started_at, at)
    _cart_touched(s, at, mid, ev.event)
    _affiliate(s, ev.properties.affiliation, at, mid)


def _order_completed(s: ProfileState, ev: OrderCompletedEvent, at: datetime, mid: str) -> None:
    p = ev.properties
    amount = p.revenue if p.revenue is not None else p.total
    assert amount is not None  # the event model requires revenue or total
    order = Order(
        order_id=p.order_id,
        at=at,
        message_id=mid,
        first_at=at,
        revenue=exact(amount),
        currency=p.currency,
        items=tuple(_item(product) for product in p.products),
    )
    s.orders[p.order_id] = merge_orders(s.orders.get(p.order_id), order)
    # The order bought the cart: what was added before it is no longer open.
    s.cart_cleared_at = max_time(s.cart_cleared_at, at)
    _cart_touched(s, at, mid, ev.event)
    _affiliate(s, p.affiliation, at, mid)


def _order_refunded(s: ProfileState, ev: OrderRefundedEvent, at: datetime, mid: str) -> None:
    p = ev.properties
    amount: Decimal | None = None  # neither total nor products: the whole order
    if p.total is not None:
        amount = exact(p.total)
    elif p.products:
        amount = sum(
            (
                exact(x.price) * (1 if x.quantity is None else x.quantity)
                for x in p.products
                if x.price is not None
            ),
            Decimal(0),
        )
    s.refunds[mid] = Refund(order_id=p.order_id, amount=amount)


def _order_cancelled(s: ProfileState, ev: OrderCancelledEvent, at: datetime, mid: str) -> None:
    order_id = ev.properties.order_id
    known = s.cancellations.get(order_id)
    s.cancellations[order_id] = at if known is None else min(known, at)


def _signed_up(s: ProfileState, ev: SignedUpEvent, at: datetime, mid: str) -> None:
    p = ev.properties
    s.signed_up = earliest(s.signed_up, Register(at, mid, p.type or ""))
    _email(s, p.email, at, mid)
    if p.referral_code:
        s.referral_code = earliest(s.referral_code, Register(at, mid, p.referral_code))
    _consent_from(s, p.model_extra or {}, at, mid, "Signed Up")


def _email_opened(s: ProfileState, ev: EmailOpenedEvent, at: datetime, mid: str) -> None:
    s.emails_opened += 1
    s.last_email_opened_at = max_time(s.last_email_opened_at, at)


def _email_clicked(s: ProfileState, ev: EmailLinkClickedEvent, at: datetime, mid: str) -> None:
    s.emails_clicked += 1
    s.last_email_clicked_at = max_time(s.last_email_clicked_at, at)


def _unsubscribed(s: ProfileState, ev: UnsubscribedEvent, at: datetime, mid: str) -> None:
    s.consent = latest(s.consent, ConsentRecord(at, mid, opted_in=False, source=ev.event))


def _referral(s: ProfileState, ev: ReferralCodeUsedEvent, at: datetime, mid: str) -> None:
    p = ev.properties
    s.referral_code = earliest(s.referral_code, Register(at, mid, p.referral_code))
    if p.referrer_id:
        s.referrer_user_id = earliest(s.referrer_user_id, Register(at, mid, p.referrer_id))


def _review(s: ProfileState, ev: ReviewSubmittedEvent, at: datetime, mid: str) -> None:
    s.reviews += 1
    rating = ev.properties.rating
    if rating is not None:
        s.ratings += 1
        s.rating_sum += exact(rating)


def _ticket_opened(s: ProfileState, ev: SupportTicketOpenedEvent, at: datetime, mid: str) -> None:
    s.tickets_opened.add(ev.properties.ticket_id)


def _ticket_resolved(
    s: ProfileState, ev: SupportTicketResolvedEvent, at: datetime, mid: str
) -> None:
    s.tickets_resolved.add(ev.properties.ticket_id)


def _track(s: ProfileState, ev: TrackEvent, at: datetime, mid: str) -> None:
    if ev.event in EMAIL_SENT_EVENTS:
        s.emails_sent += 1
        s.last_email_sent_at = max_time(s.last_email_sent_at, at)
    elif ev.event == POINTS_REDEEMED_EVENT:
        points = _whole((ev.properties or {}).get("points"))
        if points is not None:
            s.points_redeemed += points


_HANDLERS: dict[type[Any], Handler] = {
    IdentifyEvent: _identify,
    AliasEvent: _alias,
    PageEvent: _page,
    ScreenEvent: _page,
    TrackEvent: _track,
    ProductViewedEvent: _product_viewed,
    ProductAddedEvent: _product_added,
    ProductRemovedEvent: _product_removed,
    CheckoutStartedEvent: _checkout_started,
    OrderCompletedEvent: _order_completed,
    OrderRefundedEvent: _order_refunded,
    OrderCancelledEvent: _order_cancelled,
    SignedUpEvent: _signed_up,
    EmailOpenedEvent: _email_opened,
    EmailLinkClickedEvent: _email_clicked,
    UnsubscribedEvent: _unsubscribed,
    ReferralCodeUsedEvent: _referral,
    ReviewSubmittedEvent: _review,
    SupportTicketOpenedEvent: _ticket_opened,
    SupportTicketResolvedEvent: _ticket_resolved,
}


# Helpers


def _cart_touched(s: ProfileState, at: datetime, mid: str, name: str) -> None:
    s.cart_activity = latest(s.cart_activity, Register(at, mid, name))


def _item(p: Product) -> Item:
    return Item(
        product_id=p.product_id,
        sku=p.sku,
        name=p.name,
        category=p.category,
        quantity=1 if p.quantity is None else p.quantity,
        price=None if p.price is None else exact(p.price),
    )


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def _email(s: ProfileState, value: Any, at: datetime, mid: str) -> None:
    if not isinstance(value, str):
        return
    # Lower-cased so a lookup by email finds the customer however they typed it.
    email = value.strip().lower()
    if len(email) <= _EMAIL_MAX and _EMAIL_RE.match(email):
        s.email = latest(s.email, Register(at, mid, email))


def _affiliate(s: ProfileState, value: str | None, at: datetime, mid: str) -> None:
    if value and value.strip():
        s.affiliate = earliest(s.affiliate, Register(at, mid, value.strip()))


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _YES:
            return True
        if text in _NO:
            return False
    return None


def _consent_from(
    s: ProfileState, values: Mapping[str, Any], at: datetime, mid: str, source: str
) -> None:
    said: list[bool] = []
    for key in values.keys() & _CONSENT_KEYS:  # most events carry none
        flag = _flag(values[key])
        if flag is not None:
            said.append(flag if key in CONSENT_TRAITS_IN else not flag)
    if said:
        # One event saying both: an opt-out anywhere in it wins.
        record = ConsentRecord(at, mid, opted_in=all(said), source=source)
        s.consent = latest(s.consent, record)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_POINTS else None


def _touch(ev: SegmentEvent, at: datetime, mid: str) -> Touch | None:
    """The visit's attribution, if the event carries any (a page view always does)."""
    context = ev.context or {}
    page = context.get("page") or {}
    campaign = context.get("campaign")
    page_url = page.get("url")
    referrer_url = page.get("referrer")
    is_view = isinstance(ev, PageEvent | ScreenEvent)
    if isinstance(ev, PageEvent) and ev.properties:
        # analytics.js puts url and referrer in a page call's properties too.
        page_url = page_url or _str(ev.properties.get("url"))
        referrer_url = referrer_url or _str(ev.properties.get("referrer"))
    if not referrer_url:
        ref = context.get("referrer") or {}
        referrer_url = ref.get("url") or ref.get("link")
    if not (is_view or campaign or page_url or referrer_url):
        return None
    found = classify(campaign, page_url, referrer_url)
    return Touch(
        at=at,
        message_id=mid,
        channel=found.channel,
        source=_cap(found.source),
        medium=_cap(found.medium),
        campaign=_cap(found.campaign),
        term=_cap(found.term),
        content=_cap(found.content),
        referrer_url=_cap(referrer_url),
        landing_page_url=_cap(page_url),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _cap(value: str | None) -> str | None:
    # The snapshot's text fields hold MAX_TEXT characters; URLs may be longer.
    return None if value is None else value[:MAX_TEXT]

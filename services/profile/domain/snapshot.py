"""From a profile state to the profiles.v1 snapshot: the business rules on money, cart and loyalty.

Money rules:
- an order's revenue is `revenue`, else `total`; a refund without `total` or `products` refunds
  the whole order; refunds never exceed the order; a cancelled order's remaining revenue is
  `cancelled_revenue`, so net = gross - refunded - cancelled and never below 0 per order;
- `orders_count` counts orders not cancelled, in any currency;
- money is not converted: the money fields and the average order value cover the customer's
  main currency (most orders not cancelled; a tie goes to the most recent), and
  `revenue_by_currency` holds the net revenue in each currency; likewise referrals' revenue is
  in one currency (see `with_cross_customer_figures`), never a sum across currencies.

Collections that grow with a customer's history are capped (profiles_v1's MAX_* constants), so
a snapshot always fits in a Kafka message. What is kept is a function of the state alone: the
most recent entries where the state knows when (traits, products, categories, cart lines), the
first in sorted order where it does not (ids), and for money the main currency then the largest
amounts.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from typing import Any, TypeVar

from pydantic import TypeAdapter
from pydantic_core import to_json

from schemas._types import ZERO, Money
from schemas.topics._common import CartItem
from schemas.topics.profiles_v1 import (
    MAX_CART_LINES,
    MAX_COLLECTION_BYTES,
    MAX_LISTED_CATEGORIES,
    MAX_LISTED_CURRENCIES,
    MAX_LISTED_IDS,
    MAX_LISTED_PRODUCTS,
    MAX_TRAITS,
    Acquisition,
    Activity,
    Cart,
    Commerce,
    Consent,
    ConsentStatus,
    EmailEngagement,
    Loyalty,
    ProfileSnapshot,
    Referrals,
    Support,
)
from services.profile.domain.state import CartChange, ConsentRecord, Item, Order, ProfileState

CENT = Decimal("0.01")
# Exact sums need no context; the one division (an average) gets a fixed one, not the thread's.
_DIVISION = Context(prec=34)
_MONEY = TypeAdapter(Money)
_MONEY_MAP = TypeAdapter(dict[str, Money])

T = TypeVar("T")


@dataclass(frozen=True)
class LoyaltyRule:
    """Points per unit of an order's net revenue, rounded down per order.

    `per_currency` overrides the rate for a currency (e.g. {"JPY": Decimal("0.01")}). Points
    follow the order: a refund or cancellation takes back what the order earned.
    """

    points_per_unit: Decimal = Decimal(1)
    per_currency: Mapping[str, Decimal] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for rate in (self.points_per_unit, *self.per_currency.values()):
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate < 0:
                raise ValueError(f"loyalty points per unit must be a Decimal >= 0, not {rate!r}")

    def points(self, net_revenue: Decimal, currency: str) -> int:
        rate = self.per_currency.get(currency, self.points_per_unit)
        points = (net_revenue * rate).to_integral_value(rounding=ROUND_FLOOR)
        return max(0, int(points))


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """One order's money after its refunds and cancellation."""

    order: Order
    refunded: Decimal
    cancelled: Decimal  # the revenue left after refunds, when the order was cancelled
    is_cancelled: bool

    @property
    def net(self) -> Decimal:
        return self.order.revenue - self.refunded - self.cancelled


def order_figures(state: ProfileState) -> list[OrderFigures]:
    """Every completed order with its refunds and cancellation applied, oldest first."""
    partial: dict[str, Decimal] = defaultdict(Decimal)
    whole: set[str] = set()
    for refund in state.refunds.values():
        if refund.amount is None:
            whole.add(refund.order_id)
        else:
            partial[refund.order_id] += refund.amount
    out: list[OrderFigures] = []
    for order in sorted(state.orders.values(), key=lambda o: (o.first_at, o.order_id)):
        oid = order.order_id
        refunded = order.revenue if oid in whole else min(order.revenue, partial.get(oid, ZERO))
        is_cancelled = oid in state.cancellations
        cancelled = order.revenue - refunded if is_cancelled else ZERO
        out.append(OrderFigures(order, refunded, cancelled, is_cancelled))
    return out


def main_currency(figures: Iterable[OrderFigures]) -> str | None:
    """The currency of most orders not cancelled (of all orders if every one was)."""
    figures = list(figures)
    live = [f for f in figures if not f.is_cancelled] or figures
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, datetime] = {}
    for f in live:
        currency = f.order.currency
        counts[currency] += 1
        last[currency] = max(last.get(currency, f.order.first_at), f.order.first_at)
    if not counts:
        return None
    return max(counts, key=lambda c: (counts[c], last[c], c))


def consent_status(record: ConsentRecord | None) -> ConsentStatus:
    if record is None:
        return "unknown"
    return "opted_in" if record.opted_in else "opted_out"


def cart_item(item: Item, quantity: int | None = None) -> CartItem:
    return CartItem(
        product_id=item.product_id,
        sku=item.sku,
        name=item.name,
        category=item.category,
        quantity=item.quantity if quantity is None else quantity,
        price=item.price,
    )


def open_cart(state: ProfileState, currency: str | None) -> Cart:
    """The cart: per product, units added less units removed since the line was last emptied.

    A removal without a quantity empties the line; an order empties the whole cart (the state
    keeps only changes after the latest order). `currency` is used when no add names one.
    """
    by_product: dict[str, list[CartChange]] = defaultdict(list)
    for change in state.cart.values():
        by_product[change.product_key].append(change)
    lines: dict[str, CartItem] = {}
    last_added: dict[str, tuple[datetime, str]] = {}
    value = ZERO
    for key in sorted(by_product):
        changes = by_product[key]
        emptied = max(
            (c.at for c in changes if c.item is None and c.quantity is None), default=None
        )
        # A removal at the same instant as an add wins: the line stays empty.
        live = [c for c in changes if emptied is None or c.at > emptied]
        adds = [c for c in live if c.item is not None]
        if not adds:
            continue
        removed = sum(c.quantity or 0 for c in live if c.item is None)
        quantity = sum(c.quantity or 0 for c in adds) - removed
        if quantity <= 0:
            continue
        newest = max(adds, key=lambda c: c.key)
        assert newest.item is not None
        lines[key] = cart_item(newest.item, quantity)
        last_added[key] = newest.key
        if newest.item.price is not None:
            value += newest.item.price * quantity
    listed, lines_count = _capped(
        _greatest_first(last_added),
        MAX_CART_LINES,
        lambda key: _json_size(lines[key]),
        lambda keys: _list_size([lines[key] for key in keys]),
    )
    changes = sorted(state.cart.values(), key=lambda c: c.key, reverse=True)
    cart_id = next((c.cart_id for c in changes if c.cart_id), None)
    cart_currency = next((c.currency for c in changes if c.currency), None) or currency
    started = state.checkout_started_at
    cleared = state.cart_cleared_at
    return Cart(
        cart_id=cart_id,
        items=[lines[key] for key in sorted(listed)],
        lines_count=lines_count,
        items_count=sum(line.quantity for line in lines.values()),
        value=value,
        currency=cart_currency if lines else None,
        last_activity_at=None if state.cart_activity is None else state.cart_activity.at,
        checkout_started_at=started,
        checkout_pending=started is not None and (cleared is None or started > cleared),
    )


def to_snapshot(
    state: ProfileState,
    *,
    customer_id: str,
    revision: int,
    updated_at: datetime,
    loyalty: LoyaltyRule | None = None,
    merged_customer_ids: Iterable[str] = (),
    referred_customers_count: int = 0,
    referred_revenue_by_currency: Mapping[str, Decimal] | None = None,
    referred_by_customer_id: str | None = None,
) -> ProfileSnapshot:
    """The profiles.v1 payload for `state`.

    The customers merged into this one, referrals made and the customer id behind the referral
    code used span customers: the caller, which can see them, passes them in (or adds the first
    two later, with `with_cross_customer_figures`).
    """
    rule = loyalty or LoyaltyRule()
    figures = order_figures(state)
    currency = main_currency(figures)
    anonymous_ids, anonymous_ids_count = _capped(sorted(state.anonymous_ids), MAX_LISTED_IDS)
    merged, merged_count = _merged_ids(merged_customer_ids)
    traits, traits_count = _traits(state)
    referrals = _referrals(referred_customers_count, referred_revenue_by_currency or {}, currency)
    return ProfileSnapshot(
        customer_id=customer_id,
        revision=revision,
        updated_at=updated_at,
        user_id=None if state.user_id is None else state.user_id.value,
        anonymous_ids=anonymous_ids,
        anonymous_ids_count=anonymous_ids_count,
        merged_customer_ids=merged,
        merged_customer_ids_count=merged_count,
        email=None if state.email is None else state.email.value,
        traits=traits,
        traits_count=traits_count,
        timezone=None if state.timezone is None else state.timezone.value,
        locale=None if state.locale is None else state.locale.value,
        consent=Consent(
            email_marketing=consent_status(state.consent),
            email_marketing_changed_at=None if state.consent is None else state.consent.at,
            email_marketing_source=None if state.consent is None else state.consent.source,
        ),
        acquisition=_acquisition(state, referred_by_customer_id),
        activity=Activity(
            first_seen_at=state.first_seen_at,
            last_seen_at=state.last_seen_at,
            page_views=state.page_views,
            product_views=state.product_views,
            cart_adds=state.cart_adds,
            checkouts_started=state.checkouts_started,
            active_days=len(state.active_days),
        ),
        commerce=_commerce(figures, currency),
        cart=open_cart(state, currency),
        email_engagement=EmailEngagement(
            sent_count=state.emails_sent,
            opened_count=state.emails_opened,
            clicked_count=state.emails_clicked,
            last_sent_at=state.last_email_sent_at,
            last_opened_at=state.last_email_opened_at,
            last_clicked_at=state.last_email_clicked_at,
        ),
        support=Support(
            tickets_opened=len(state.tickets_opened),
            tickets_resolved=len(state.tickets_resolved),
            tickets_open=len(state.tickets_opened - state.tickets_resolved),
            reviews_count=state.reviews,
            average_rating=(
                float(_DIVISION.divide(state.rating_sum, Decimal(state.ratings)).quantize(CENT))
                if state.ratings
                else None
            ),
        ),
        referrals=referrals,
        loyalty=_loyalty(figures, rule, state.points_redeemed),
    )


def with_cross_customer_figures(
    snapshot: ProfileSnapshot,
    *,
    merged_customer_ids: Iterable[str],
    referred_customers_count: int,
    referred_revenue_by_currency: Mapping[str, Decimal],
) -> ProfileSnapshot:
    """`snapshot` with what spans customers, as `to_snapshot` given them would have built it.

    Those figures are known only once a batch's own figures are saved; adding them to the
    snapshot already built saves building every snapshot twice. `referred_revenue_by_currency`
    is the referred customers' net revenue per currency.
    """
    merged, merged_count = _merged_ids(merged_customer_ids)
    return snapshot.model_copy(
        update={
            "merged_customer_ids": merged,
            "merged_customer_ids_count": merged_count,
            "referrals": _referrals(
                referred_customers_count,
                referred_revenue_by_currency,
                snapshot.commerce.currency,
            ),
        }
    )


def _merged_ids(merged_customer_ids: Iterable[str]) -> tuple[list[str], int | None]:
    return _capped(sorted(set(merged_customer_ids)), MAX_LISTED_IDS)


def _referrals(
    count: int, revenue_by_currency: Mapping[str, Decimal], own_currency: str | None
) -> Referrals:
    """The referred customers' revenue in one currency, never a sum across currencies.

    The currency is the referrer's own if the referred bought in it, else the one with the
    largest amount (a tie goes to the alphabetically first). Amounts are picked as they are.
    """
    currency = (
        own_currency
        if own_currency in revenue_by_currency
        else next(iter(_greatest_first(revenue_by_currency)), None)
    )
    listed, currencies_count = _by_currency(revenue_by_currency, currency)
    return Referrals(
        referred_customers_count=count,
        referred_revenue=ZERO if currency is None else revenue_by_currency[currency],
        currency=currency,
        revenue_by_currency=listed,
        currencies_count=currencies_count,
    )


def _traits(state: ProfileState) -> tuple[dict[str, Any], int | None]:
    traits = state.traits
    kept, count = _capped(
        _greatest_first({name: reg.key for name, reg in traits.items()}),
        MAX_TRAITS,
        lambda name: _json_size(name) + _json_size(traits[name].value),
        lambda names: len(to_json({name: traits[name].value for name in names})),
    )
    return {name: traits[name].value for name in sorted(kept)}, count


def _by_currency(
    amounts: Mapping[str, Decimal], first: str | None
) -> tuple[dict[str, Decimal], int | None]:
    """`amounts` capped: `first`, then the largest (a tie goes to the alphabetically first)."""
    if len(amounts) <= 1:  # most customers buy in one currency: nothing to rank or cap
        return dict(amounts), None
    kept, count = _capped(
        sorted(_greatest_first(amounts), key=lambda c: c != first),  # stable: moves `first` up
        MAX_LISTED_CURRENCIES,
        lambda c: _json_size(c) + len(_MONEY.dump_json(amounts[c])) + 1,
        lambda currencies: len(_MONEY_MAP.dump_json({c: amounts[c] for c in currencies})),
    )
    return {c: amounts[c] for c in sorted(kept)}, count


def _greatest_first(values: Mapping[str, Any]) -> list[str]:
    """The keys by their value, greatest (latest) first; a tie goes to sorted order."""
    # Stable sorts, and no arithmetic on the values: Decimal negation would round.
    return sorted(sorted(values), key=values.__getitem__, reverse=True)


def _json_size(value: Any) -> int:
    """Bytes `value` takes in the snapshot's JSON, with the separator after it."""
    return len(to_json(value)) + 1


def _list_size(entries: Sequence[Any]) -> int:
    return len(to_json(list(entries)))


def _capped(
    ranked: Sequence[T],
    limit: int,
    size: Callable[[T], int] = _json_size,
    whole: Callable[[Sequence[T]], int] = _list_size,
) -> tuple[list[T], int | None]:
    """The first `limit` of `ranked` that fit together in MAX_COLLECTION_BYTES of JSON, and the
    full count if any was left out (else None).

    An entry too large for the room left is passed over, so one huge trait cannot hide the rest.
    `whole(entries)` is the size of the collection's JSON, one byte more than its entries'
    `size`s add up to (brackets and separators): when everything fits, one serialisation of the
    whole collection says so, instead of one per entry (the common case, on the hot path).
    """
    if len(ranked) <= limit and whole(ranked) - 1 <= MAX_COLLECTION_BYTES:
        return list(ranked), None
    kept: list[T] = []
    room = MAX_COLLECTION_BYTES
    for entry in ranked:
        if len(kept) == limit:
            break
        need = size(entry)
        if need <= room:
            kept.append(entry)
            room -= need
    return kept, None if len(kept) == len(ranked) else len(ranked)


def _acquisition(state: ProfileState, referred_by_customer_id: str | None) -> Acquisition:
    touch = state.first_touch
    referral_code = None if state.referral_code is None else state.referral_code.value
    referrer = None if state.referrer_user_id is None else state.referrer_user_id.value
    channel = None if touch is None else touch.channel
    if channel in (None, "direct") and (referral_code or referrer):
        # No tagged link, but a friend's code: word of mouth is the referral channel.
        channel = "referral"
    affiliate = None if state.affiliate is None else state.affiliate.value
    return Acquisition(
        first_touch_at=None if touch is None else touch.at,
        channel=channel,
        source=None if touch is None else touch.source,
        medium=None if touch is None else touch.medium,
        campaign=None if touch is None else touch.campaign,
        term=None if touch is None else touch.term,
        content=None if touch is None else touch.content,
        referrer_url=None if touch is None else touch.referrer_url,
        landing_page_url=None if touch is None else touch.landing_page_url,
        referral_code=referral_code,
        referred_by_customer_id=referred_by_customer_id,
        referred_by_user_id=referrer,
        affiliate=affiliate,
    )


def _commerce(figures: list[OrderFigures], currency: str | None) -> Commerce:
    live = [f for f in figures if not f.is_cancelled]
    mine = [f for f in figures if f.order.currency == currency]
    mine_live = [f for f in mine if not f.is_cancelled]
    net = sum((f.net for f in mine), ZERO)
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for f in figures:
        by_currency[f.order.currency] += f.net
    average = (
        _DIVISION.divide(net, Decimal(len(mine_live))).quantize(
            CENT, rounding=ROUND_HALF_EVEN, context=_DIVISION
        )
        if mine_live
        else None
    )
    product_bought: dict[str, datetime] = {}
    category_bought: dict[str, datetime] = {}
    for f in live:  # oldest first, so the last time written is the latest
        for i in f.order.items:
            product = i.product_id or i.sku
            if product is not None:
                product_bought[product] = f.order.first_at
            if i.category is not None:
                category_bought[i.category] = f.order.first_at
    products, products_count = _capped(_greatest_first(product_bought), MAX_LISTED_PRODUCTS)
    categories, categories_count = _capped(_greatest_first(category_bought), MAX_LISTED_CATEGORIES)
    revenue_by_currency, currencies_count = _by_currency(by_currency, currency)
    return Commerce(
        currency=currency,
        orders_count=len(live),
        gross_revenue=sum((f.order.revenue for f in mine), ZERO),
        refunded_revenue=sum((f.refunded for f in mine), ZERO),
        cancelled_revenue=sum((f.cancelled for f in mine), ZERO),
        net_revenue=net,
        average_order_value=average,
        first_order_at=min((f.order.first_at for f in live), default=None),
        last_order_at=max((f.order.first_at for f in live), default=None),
        items_purchased=sum(i.quantity for f in live for i in f.order.items),
        products_purchased=sorted(products),
        products_purchased_count=products_count,
        categories_purchased=sorted(categories),
        categories_purchased_count=categories_count,
        revenue_by_currency=revenue_by_currency,
        currencies_count=currencies_count,
    )


def _loyalty(figures: list[OrderFigures], rule: LoyaltyRule, redeemed: int) -> Loyalty:
    earned = sum(rule.points(f.net, f.order.currency) for f in figures if not f.is_cancelled)
    return Loyalty(points_earned=earned, points_redeemed=redeemed, points_balance=earned - redeemed)

"""The Email page's figures: per journey and template, what happened to its emails each day
(sent, suppressed by reason, bounced, uncertain, opened, clicked, unsubscribed), its open and
click rates, and the orders its emails brought.

Counting (notifications.v1 is at-least-once, and a reader opens an email as often as they like):
each fact counts once per email and type, on the day it first happened: `opened` is emails
opened, `clicked` emails clicked, so the rates (per email sent) stay between 0 and 1.

Attribution, last click: an order is attributed to the latest email click of its customer at or
before it, if that click is at most `window` before it (an order exactly `window` after the
click counts; one before every click does not). Each order counts once, for one journey and
template, however many emails were clicked before it.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.scoring.domain.analytics.figures import DateRange

SENT, SUPPRESSED, OPENED, CLICKED = "sent", "suppressed", "opened", "clicked"
EMAIL_COUNTS = (SENT, SUPPRESSED, "bounced", "uncertain", OPENED, CLICKED, "unsubscribed")
ATTRIBUTED = ("orders", "revenue")  # the snapshot's figures: email_orders:<journey>:<template>
EMAIL_FIGURES = tuple(f"email_{measure}:%" for measure in ATTRIBUTED)  # SQL LIKE patterns
DAILY_SERIES = (SENT, OPENED, CLICKED)  # the page's chart over time

# A day's count: (day, journey, template, type, reason); reason '' unless suppressed.
CountKey = tuple[date, str, str, str, str]


@dataclass(frozen=True, slots=True)
class EmailFact:
    """One notifications.v1 record, as the page counts it."""

    notification_id: str
    type: str
    at: datetime
    journey: str  # '' for an email of no journey
    template: str
    reason: str = ""

    @property
    def once(self) -> tuple[str, str]:
        """What makes it count once: the email and the type."""
        return (self.notification_id, self.type)


def daily_counts(facts: Iterable[EmailFact], first: set[tuple[str, str]]) -> Counter[CountKey]:
    """What to add to each day's counters: the facts whose (email, type) was seen for the
    first time (`first`), each once, on its own day (the earliest of a batch's copies)."""
    earliest: dict[tuple[str, str], EmailFact] = {}
    for fact in facts:
        if fact.once in first and (fact.once not in earliest or fact.at < earliest[fact.once].at):
            earliest[fact.once] = fact
    return Counter(
        (f.at.date(), f.journey, f.template, f.type, f.reason) for f in earliest.values()
    )


@dataclass(frozen=True, slots=True)
class Click:
    customer_id: str
    at: datetime
    journey: str
    template: str


@dataclass(frozen=True, slots=True)
class Order:
    customer_id: str
    order_id: str
    at: datetime
    currency: str
    revenue: float


def last_click(order: Order, clicks: Iterable[Click], window: timedelta) -> Click | None:
    """The click an order is attributed to: its customer's latest at or before it, within
    `window`; None when there is none."""
    eligible = [
        c
        for c in clicks
        if c.customer_id == order.customer_id and order.at - window <= c.at <= order.at
    ]
    if not eligible:
        return None
    return max(eligible, key=lambda c: (c.at, c.journey, c.template))


# An attributed figure's key: (day, currency, journey, template) -> (orders, revenue).
Attributed = dict[tuple[date, str, str, str], tuple[int, float]]


def attribute(orders: Iterable[Order], clicks: Iterable[Click], window: timedelta) -> Attributed:
    """Orders and revenue per day (the order's), currency, journey and template."""
    by_customer: dict[str, list[Click]] = {}
    for click in clicks:
        by_customer.setdefault(click.customer_id, []).append(click)
    found: Attributed = {}
    seen: set[tuple[str, str]] = set()
    for order in orders:
        if (order.customer_id, order.order_id) in seen:
            continue
        seen.add((order.customer_id, order.order_id))
        chosen = last_click(order, by_customer.get(order.customer_id, ()), window)
        if chosen is not None:
            key = (order.at.date(), order.currency, chosen.journey, chosen.template)
            count, revenue = found.get(key, (0, 0.0))
            found[key] = (count + 1, revenue + order.revenue)
    return found


def attributed_figure(measure: str, journey: str, template: str) -> str:
    """The daily figure of the orders (or revenue) a journey's template brought; ids hold no
    ':' (journey and template ids are slugs)."""
    return f"email_{measure}:{journey}:{template}"


def rate(part: float, whole: float) -> float | None:
    """part / whole; None (not 0) when nothing was sent: no rate to speak of."""
    return part / whole if whole else None


@dataclass(slots=True)
class EmailTotals:
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(EMAIL_COUNTS, 0.0))
    suppressed_by_reason: dict[str, float] = field(default_factory=dict)
    orders: float = 0.0
    revenue: float = 0.0

    @property
    def open_rate(self) -> float | None:
        return rate(self.counts[OPENED], self.counts[SENT])

    @property
    def click_rate(self) -> float | None:
        return rate(self.counts[CLICKED], self.counts[SENT])


@dataclass(frozen=True, slots=True)
class EmailRow:
    journey: str
    template: str
    totals: EmailTotals
    series: dict[str, list[tuple[date, float]]]  # sent, opened, clicked, orders: every day


@dataclass(frozen=True, slots=True)
class EmailPage:
    totals: EmailTotals
    series: dict[str, list[tuple[date, float]]]  # DAILY_SERIES and orders, all emails
    rows: list[EmailRow]  # most sent first


# What the store sums over a range, so a request reads a few rows per journey and template
# and not every counter of every day: each (journey, template, type, reason)'s total, and each
# day's count of the charted types (DAILY_SERIES), over reasons.
RangeTotal = tuple[str, str, str, str, float]  # journey, template, type, reason, count
DayCount = tuple[date, str, str, str, float]  # day, journey, template, type, count


def email_page(
    totals: Iterable[RangeTotal],
    daily: Iterable[DayCount],
    figures: Iterable[tuple[date, str, str, float]],
    period: DateRange,
    currency: str,
) -> EmailPage:
    """The page from the range's counter totals, the charted types' daily counts and the
    snapshot rows (day, currency, figure, value) of attributed orders in `currency`."""
    days = period.each_day()
    in_range = set(days)
    per_row: dict[tuple[str, str], EmailTotals] = {}
    charted: dict[tuple[str, str], dict[str, dict[date, float]]] = {}

    def row(journey: str, template: str) -> EmailTotals:
        charted.setdefault((journey, template), {})
        return per_row.setdefault((journey, template), EmailTotals())

    def chart(journey: str, template: str, measure: str, day: date, value: float) -> None:
        row(journey, template)
        by_day = charted[(journey, template)].setdefault(measure, {})
        by_day[day] = by_day.get(day, 0.0) + value

    for journey, template, kind, reason, count in totals:
        if kind in EMAIL_COUNTS:
            found = row(journey, template)
            found.counts[kind] += count
            if kind == SUPPRESSED:
                found.suppressed_by_reason[reason] = (
                    found.suppressed_by_reason.get(reason, 0.0) + count
                )
    for day, journey, template, kind, count in daily:
        if day in in_range and kind in DAILY_SERIES:
            chart(journey, template, kind, day, count)
    for day, row_currency, name, value in figures:
        measure, _, ids = name.partition(":")
        if day in in_range and row_currency == currency and measure.startswith("email_"):
            journey, _, template = ids.partition(":")
            kind = measure.removeprefix("email_")
            if kind in ATTRIBUTED:
                found = row(journey, template)
                if kind == "orders":
                    found.orders += value
                    chart(journey, template, kind, day, value)
                else:
                    found.revenue += value

    def series(measures: Mapping[str, Mapping[date, float]]) -> dict[str, list[tuple[date, float]]]:
        return {
            measure: [(day, measures.get(measure, {}).get(day, 0.0)) for day in days]
            for measure in (*DAILY_SERIES, "orders")
        }

    rows = [
        EmailRow(journey, template, found, series(charted[(journey, template)]))
        for (journey, template), found in per_row.items()
    ]
    rows.sort(key=lambda r: (-r.totals.counts[SENT], r.journey, r.template))
    overall = EmailTotals()
    together: dict[str, dict[date, float]] = {}
    for each in rows:
        for kind, value in each.totals.counts.items():
            overall.counts[kind] += value
        for reason, value in each.totals.suppressed_by_reason.items():
            overall.suppressed_by_reason[reason] = (
                overall.suppressed_by_reason.get(reason, 0.0) + value
            )
        overall.orders += each.totals.orders
        overall.revenue += each.totals.revenue
        for measure, by_day in charted[(each.journey, each.template)].items():
            summed = together.setdefault(measure, {})
            for day, value in by_day.items():
                summed[day] = summed.get(day, 0.0) + value
    return EmailPage(overall, series(together), rows)

"""The Lifecycle page's figures: customers per lifecycle stage over time, the purchase funnel
of the customers first seen in the range, and the cohort retention triangle.

Stages: the segments snapshot's `customers:lifecycle_stage:<stage>` rows, read as levels.

Funnel: each day's cohort of customers first seen that day (`activity.first_seen_at`, UTC) and
how far each got, as of the snapshot. A customer counts at every step up to the furthest one
they reached, so the counts never grow down the funnel:

- visit: every customer first seen that day (any event: a page view, an identify, ...);
- product view: viewed a product (Product Viewed), or got further;
- cart: added a product to a cart (Product Added), or got further;
- checkout: started a checkout (Checkout Started), or ordered;
- order: completed an order (`commerce.orders_count` > 0), even one the storefront sent
  without the steps before it (an order placed by phone, an import).

Cohort retention: customers grouped by the month of their first order (UTC, from the order
ledger); for each month since (0 is the first order's month, up to the snapshot's month) how
many of them ordered in that month. Month 0 is the whole cohort, its size.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date
from typing import get_args

from schemas.topics.scores_v1 import LifecycleStage
from services.scoring.domain.analytics.figures import (
    ALL_CURRENCIES,
    DateRange,
    Figure,
    FigureKind,
    FigureTrend,
    trend,
)
from services.scoring.domain.analytics.segments import segment_figure
from services.scoring.domain.profile_view import ScoredProfile

STAGES: tuple[str, ...] = get_args(LifecycleStage)  # selection, acquisition, ..., lapsed
FUNNEL_STEPS = ("visit", "product_view", "cart", "checkout", "order")
FUNNEL_TITLES = {
    "visit": "Visit",
    "product_view": "Product view",
    "cart": "Cart",
    "checkout": "Checkout",
    "order": "Order",
}
# The page's figures as SQL LIKE patterns; the funnel's and the triangle's are recomputed for
# every day by each snapshot (SnapshotPart.history).
FUNNEL_FIGURES = "funnel:%"
RETENTION_FIGURES = "retention:m%"
STAGE_FIGURES = "customers:lifecycle_stage:%"

Row = tuple[date, str, str, float]  # a snapshot row: day, currency, figure, value


def funnel_figure(step: str) -> str:
    """The customers first seen on a day who reached `step` (written on that day)."""
    return f"funnel:{step}"


def retention_figure(months_since: int) -> str:
    """The customers of a first-order month who ordered `months_since` months after it
    (written on the cohort month's first day)."""
    return f"retention:m{months_since}"


def stage_figure(stage: str) -> Figure:
    return Figure(
        segment_figure("customers", "lifecycle_stage", stage),
        FigureKind.LEVEL,
        False,
        stage.capitalize(),
    )


# Measuring: each stored profile keeps its cohort day and furthest step (set from these rules
# as it is saved), the snapshot counts customers per both, these rules turn counts into rows.


def first_seen_on(profile: ScoredProfile) -> date | None:
    """The day (UTC) of the customer's funnel cohort: when they were first seen."""
    seen = profile.activity.first_seen_at
    return None if seen is None else seen.astimezone(UTC).date()


def furthest_step(profile: ScoredProfile) -> int:
    """The index in FUNNEL_STEPS of the furthest step the customer reached (0: the visit)."""
    activity = profile.activity
    done = (
        activity.product_views > 0,
        activity.cart_adds > 0,
        activity.checkouts_started > 0,
        profile.commerce.orders_count > 0,
    )
    return max((n + 1 for n, did in enumerate(done) if did), default=0)


def funnel_counts(groups: Iterable[tuple[int, int]]) -> dict[str, int]:
    """Customers per funnel step from (furthest step, customers) groups, each customer counted
    at every step up to their furthest."""
    counts = dict.fromkeys(FUNNEL_STEPS, 0)
    for furthest, customers in groups:
        for step in FUNNEL_STEPS[: furthest + 1]:
            counts[step] += customers
    return counts


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def month_of(day: date) -> date:
    return day.replace(day=1)


def retention_cells(
    active: Iterable[tuple[date, date, int]], today: date
) -> list[tuple[date, str, float]]:
    """The triangle's rows from (first-order month, month, customers who ordered in it): for
    each cohort, every month from its first to today's, 0 where nobody ordered."""
    by_cohort: dict[date, dict[int, int]] = {}
    for cohort, month, customers in active:
        by_cohort.setdefault(month_of(cohort), {})[months_between(cohort, month)] = customers
    return [
        (cohort, retention_figure(k), float(found.get(k, 0)))
        for cohort, found in sorted(by_cohort.items())
        for k in range(months_between(cohort, today) + 1)
    ]


# Reading (the API): the page's figures from the rows of its range.


@dataclass(frozen=True, slots=True)
class FunnelStep:
    step: str
    title: str
    customers: float
    to_previous: float | None  # share of the previous step's customers (None: first, or 0)
    overall: float | None  # share of the visits (None: no visit)


@dataclass(frozen=True, slots=True)
class Cohort:
    month: date  # the first-order month
    customers: float  # its size: customers whose first order was in that month
    returning: list[float]  # per month since the first, customers who ordered in it
    shares: list[float]  # returning / customers, per month since


@dataclass(frozen=True, slots=True)
class Lifecycle:
    stages: list[FigureTrend]  # in STAGES order
    funnel: list[FunnelStep]  # in FUNNEL_STEPS order
    cohorts: list[Cohort]  # oldest first


def lifecycle(rows: Iterable[Row], period: DateRange) -> Lifecycle:
    """The page's figures: stages over `period` (against the previous period), the funnel of
    the customers first seen in it, and the cohorts whose first-order month overlaps it."""
    days = set(period.each_day())
    first_month = month_of(period.start)
    by_stage: dict[str, dict[date, float]] = {stage_figure(s).name: {} for s in STAGES}
    funnel_sums = dict.fromkeys(FUNNEL_STEPS, 0.0)
    steps = {funnel_figure(step): step for step in FUNNEL_STEPS}
    cells: dict[date, dict[int, float]] = {}
    for day, currency, name, value in rows:
        if currency != ALL_CURRENCIES:
            continue
        if name in by_stage:
            by_stage[name][day] = value
        elif name in steps and day in days:
            funnel_sums[steps[name]] += value
        elif name.startswith("retention:m") and first_month <= day <= period.end:
            cells.setdefault(day, {})[int(name.removeprefix("retention:m"))] = value
    return Lifecycle(
        stages=[trend(stage_figure(s), by_stage[stage_figure(s).name], period) for s in STAGES],
        funnel=funnel(funnel_sums),
        cohorts=[_cohort(month, found) for month, found in sorted(cells.items())],
    )


def funnel(counts: Mapping[str, float]) -> list[FunnelStep]:
    """Each step's customers (0 when missing) with its conversion from the step before and
    from the visits."""
    found = [counts.get(step, 0.0) for step in FUNNEL_STEPS]
    visits = found[0]
    return [
        FunnelStep(
            step,
            FUNNEL_TITLES[step],
            customers,
            _share(customers, found[n - 1]) if n else None,
            _share(customers, visits),
        )
        for n, (step, customers) in enumerate(zip(FUNNEL_STEPS, found, strict=True))
    ]


def _cohort(month: date, found: Mapping[int, float]) -> Cohort:
    returning = [found.get(k, 0.0) for k in range(max(found) + 1)]
    size = returning[0]
    return Cohort(month, size, returning, [_share(n, size) or 0.0 for n in returning])


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None

"""The dashboard's data, /v1/analytics/... (admin token or a dashboard session): JSON any tool
can chart, computed by the pure core (services/scoring/domain/analytics/) from the daily
snapshot rows.

Each page's routes are built by a function of the engine (`PageRoutes`); this module serves the
overview's and the segments', and holds what every page's answer shares: the date range, the
currency and the snapshot rows they select."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas._types import EARLIEST, LATEST
from services.runtime.params import invalid_parameter
from services.scoring.analytics_store import AnalyticsStore
from services.scoring.domain.analytics.figures import DateRange, FigureTrend
from services.scoring.domain.analytics.overview import OVERVIEW, overview
from services.scoring.domain.analytics.segments import (
    SEGMENTS_PAGE_FIGURES,
    SegmentTrend,
    moves,
    segments,
)

DEFAULT_DAYS = 30
MAX_DAYS = 3660
# The days a range may name: those of every date Retain stores, so that no arithmetic on them
# (the default start, the previous period) leaves what a date can hold.
FIRST_DAY = EARLIEST.date()
LAST_DAY = LATEST.date() - timedelta(days=1)


class JsonAnswer(JSONResponse):
    """An answer's JSON, written by orjson from the route's dict as it is. FastAPI's own
    encoder walks every value in Python: for a year of daily series, over a hundred times
    slower than the whole query. A JSONResponse, so the OpenAPI document says JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


CurrencyCode = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
_DAYS = f"between {FIRST_DAY} and {LAST_DAY}"
Start = Annotated[
    date | None,
    Query(ge=FIRST_DAY, le=LAST_DAY, description=f"First day, {_DAYS} (default: end - 29 days)"),
]
End = Annotated[
    date | None,
    Query(ge=FIRST_DAY, le=LAST_DAY, description=f"Last day, included, {_DAYS} (default: today)"),
]


def period_of(start: date | None, end: date | None) -> DateRange:
    """The range asked for; a 422 naming `start` if it cannot be one."""
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise invalid_parameter("start", f"start ({start}) must not be after end ({end})", start)
    if (end - start).days >= MAX_DAYS:
        raise invalid_parameter(
            "start",
            f"the range from start ({start}) to end ({end}) may cover at most {MAX_DAYS} days",
            start,
        )
    return DateRange(start, end)


def trend_view(trend: FigureTrend) -> dict[str, Any]:
    return {
        "name": trend.figure.name,
        "title": trend.figure.title,
        "kind": trend.figure.kind.value,
        "money": trend.figure.money,
        "value": trend.value,
        "previous": trend.previous,
        "change": trend.change,
        "series": points(trend.series),
    }


def points(found: Sequence[tuple[date, float | None]]) -> list[list[Any]]:
    return [[day.isoformat(), value] for day, value in found]


def _segment_view(trend: SegmentTrend) -> dict[str, Any]:
    return {
        "segment": trend.segment,
        "customers": trend.latest_customers,
        "value": trend.latest_value,
        "customers_series": points(trend.customers),
        "value_series": points(trend.value),
    }


@dataclass(frozen=True)
class Snapshots:
    currencies: list[str]  # every currency with figures, the default first
    currency: str | None  # the one asked for, else the default; None before any figure
    rows: Sequence[tuple[date, str, str, float]]

    def head(self, period: DateRange) -> dict[str, Any]:
        """What every answer starts with: its range and currency, and the currencies there are."""
        return {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "currency": self.currency,
            "currencies": self.currencies,
        }


async def load_snapshots(
    engine: AsyncEngine,
    first: date,
    last: date,
    currency: str | None,
    figures: Sequence[str] = ("%",),
) -> Snapshots:
    """The rows from `first` to `last` of the figures a page shows (SQL LIKE patterns): a page
    reads its own figures, not every page's."""
    async with engine.connect() as connection:
        store = AnalyticsStore(connection)
        currencies = await store.currencies()
        rows = await store.figures(first, last, figures)
    return Snapshots(currencies, currency or (currencies[0] if currencies else None), rows)


PageRoutes = Callable[[AsyncEngine], APIRouter]


def analytics_router(engine: AsyncEngine, access: Any, pages: Sequence[PageRoutes]) -> APIRouter:
    """Every page's routes under /v1/analytics, each behind `access`."""
    router = APIRouter(
        prefix="/v1/analytics",
        tags=["analytics"],
        dependencies=[Depends(access)],
        default_response_class=JsonAnswer,
    )
    router.include_router(_overview_and_segments(engine))
    for page in pages:
        router.include_router(page(engine))
    return router


def _overview_and_segments(engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/overview",
        summary="Customers, buyers, revenue, average historical and predicted CLV, repeat rate "
        "and churn risk: each one's daily series over the range, its value for the range and "
        "the change against the previous period of as many days",
    )
    async def overview_figures(
        start: Start = None, end: End = None, currency: CurrencyCode = None
    ) -> JsonAnswer:
        period = period_of(start, end)
        previous = period.previous()
        names = [figure.name for figure in OVERVIEW]
        found = await load_snapshots(engine, previous.start, period.end, currency, names)
        trends = overview(found.rows, period, found.currency or "")
        return JsonAnswer(
            {
                **found.head(period),
                "previous": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
                "figures": [trend_view(t) for t in trends],
            }
        )

    @router.get(
        "/segments",
        summary="Value tiers, RFM segments, loyalty ladder steps and lifecycle stages: each "
        "segment's customers and historical value (in the currency) per day over the range; "
        "the RFM recency x frequency grid (customers and value) of the range's last snapshot; "
        "and the moves between RFM segments and between ladder steps made in the range",
    )
    async def segment_figures(
        start: Start = None, end: End = None, currency: CurrencyCode = None
    ) -> JsonAnswer:
        period = period_of(start, end)
        found = await load_snapshots(
            engine, period.start, period.end, currency, SEGMENTS_PAGE_FIGURES
        )
        by_segment = segments(found.rows, period, found.currency or "")
        return JsonAnswer(
            {
                **found.head(period),
                "dimensions": {
                    dimension: [_segment_view(t) for t in trends]
                    for dimension, trends in by_segment.dimensions.items()
                },
                "rfm_grid": {
                    "day": by_segment.rfm.day.isoformat() if by_segment.rfm.day else None,
                    "customers": by_segment.rfm.customers,
                    "value": by_segment.rfm.value,
                },
                "moves": {
                    dimension: [
                        {"from": m.before, "to": m.after, "customers": m.customers} for m in made
                    ]
                    for dimension, made in moves(found.rows, period).items()
                },
            }
        )

    return router

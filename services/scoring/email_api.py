"""The Email page's data: GET /v1/analytics/email (mounted under /v1/analytics)."""

from datetime import date
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.analytics_api import (
    CurrencyCode,
    End,
    JsonAnswer,
    Start,
    load_snapshots,
    period_of,
    points,
)
from services.scoring.domain.analytics.email import EMAIL_FIGURES, EmailTotals, email_page
from services.scoring.email_store import PostgresEmailStore


def _totals(totals: EmailTotals) -> dict[str, Any]:
    return {
        **totals.counts,
        "suppressed_by_reason": dict(sorted(totals.suppressed_by_reason.items())),
        "open_rate": totals.open_rate,
        "click_rate": totals.click_rate,
        "orders": totals.orders,
        "revenue": totals.revenue,
    }


def _series(series: dict[str, list[tuple[date, float]]]) -> dict[str, list[list[Any]]]:
    return {measure: points(found) for measure, found in series.items()}


def email_routes(engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/email",
        summary="Per journey and template: emails sent, suppressed (by reason), bounced, "
        "uncertain, opened, clicked and unsubscribed from over the range, open and click "
        "rates, and the orders (and revenue, in the currency) attributed to their last click; "
        "with each one's daily series of sent, opened, clicked and orders",
    )
    async def email_figures(
        start: Start = None, end: End = None, currency: CurrencyCode = None
    ) -> JsonAnswer:
        period = period_of(start, end)
        found = await load_snapshots(engine, period.start, period.end, currency, EMAIL_FIGURES)
        async with engine.connect() as connection:
            store = PostgresEmailStore(connection)
            totals = await store.range_totals(period.start, period.end)
            daily = await store.charted_daily(period.start, period.end)
        page = email_page(totals, daily, found.rows, period, found.currency or "")
        return JsonAnswer(
            {
                **found.head(period),
                "totals": _totals(page.totals),
                "series": _series(page.series),
                "rows": [
                    {
                        "journey": row.journey,
                        "template": row.template,
                        **_totals(row.totals),
                        "series": _series(row.series),
                    }
                    for row in page.rows
                ],
            }
        )

    return router

"""GET /v1/analytics/lifecycle: the Lifecycle page's answer, from the daily snapshot rows."""

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.analytics_api import (
    End,
    JsonAnswer,
    Start,
    load_snapshots,
    period_of,
    trend_view,
)
from services.scoring.domain.analytics.lifecycle import (
    FUNNEL_FIGURES,
    RETENTION_FIGURES,
    STAGE_FIGURES,
    STAGES,
    lifecycle,
    month_of,
)

_FIGURES = (STAGE_FIGURES, FUNNEL_FIGURES, RETENTION_FIGURES)


def lifecycle_routes(engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/lifecycle",
        summary="Customers per lifecycle stage (selection, acquisition, retention, expansion, "
        "lapsed) per day over the range, with the last day's count and its change against the "
        "previous period; the funnel visit -> product view -> cart -> checkout -> order of the "
        "customers first seen in the range, with each step's conversion from the step before "
        "and from the visits; and the cohort retention triangle of the first-order months the "
        "range overlaps: each cohort's size and, per month since its first order, the customers "
        "who ordered and their share",
    )
    async def lifecycle_figures(start: Start = None, end: End = None) -> JsonAnswer:
        period = period_of(start, end)
        first = min(period.previous().start, month_of(period.start))
        found = await load_snapshots(engine, first, period.end, None, _FIGURES)
        page = lifecycle(found.rows, period)
        return JsonAnswer(
            {
                **found.head(period),
                "stages": [
                    {"stage": stage, **trend_view(trend)}
                    for stage, trend in zip(STAGES, page.stages, strict=True)
                ],
                "funnel": [
                    {
                        "step": step.step,
                        "title": step.title,
                        "customers": step.customers,
                        "to_previous": step.to_previous,
                        "overall": step.overall,
                    }
                    for step in page.funnel
                ],
                "cohorts": [
                    {
                        "month": cohort.month.isoformat()[:7],
                        "customers": cohort.customers,
                        "returning": cohort.returning,
                        "shares": cohort.shares,
                    }
                    for cohort in page.cohorts
                ],
            }
        )

    return router

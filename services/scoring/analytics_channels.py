"""The dashboard's Channels page: its part of the daily snapshot and its route,
GET /v1/analytics/channels.

Each snapshot recomputes channel economics (services/scoring/domain/channels.py, the rules of
GET /v1/channels) into scoring.channel_months: the database counts the customers per
acquisition (channel, campaign, affiliate), month of first touch, month of first order and
currency, with their CLV summed, and those groups go through the same `channel_figures` as one
customer each would, so the page reads a few rows per month instead of every profile.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.scoring.analytics_api import CurrencyCode, End, Snapshots, Start, period_of
from services.scoring.analytics_store import AnalyticsStore, DailyRows, SnapshotPart
from services.scoring.api import economics_view
from services.scoring.domain.analytics.channels import (
    ChannelBy,
    ChannelLine,
    channel_lines,
    months_of,
)
from services.scoring.domain.channels import Acquired, ChannelFigures, channel_figures
from services.scoring.store import PostgresScoringStore

# What `acquired` reads from a profile and its scores, grouped: the first touch (else the
# first time seen) and the first order as UTC months, the scores' currency (else the
# profile's), the CLV (0 before the first scoring).
_ACQUISITIONS = text(
    "SELECT channel, campaign, affiliate, touched, ordered, currency, count(*) AS customers, "
    "sum(clv_historical) AS clv_historical, sum(clv_predicted) AS clv_predicted FROM ("
    "SELECT p->'acquisition'->>'channel' AS channel, "
    "p->'acquisition'->>'campaign' AS campaign, p->'acquisition'->>'affiliate' AS affiliate, "
    "to_char(CAST(coalesce(p->'acquisition'->>'first_touch_at', "
    "p->'activity'->>'first_seen_at') AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM') "
    "AS touched, "
    "to_char(CAST(p->'commerce'->>'first_order_at' AS timestamptz) AT TIME ZONE 'UTC', "
    "'YYYY-MM') AS ordered, "
    "coalesce(s.currency, p->'commerce'->>'currency') AS currency, "
    "coalesce(CAST(s.clv_historical AS numeric), 0) AS clv_historical, "
    "coalesce(CAST(s.clv_predicted AS numeric), 0) AS clv_predicted "
    # Each profile parsed once (json is text: every -> would parse it again; OFFSET 0 keeps
    # the planner from inlining the cast into every use); the scores as the snapshot read them.
    "FROM (SELECT customer_id, CAST(snapshot AS jsonb) AS p FROM scoring.profiles OFFSET 0) "
    "AS j LEFT JOIN snapshot_scores AS s USING (customer_id)) AS a "
    "GROUP BY 1, 2, 3, 4, 5, 6"
)
_CLEAR = text("DELETE FROM scoring.channel_months")
_SAVE = text(
    "INSERT INTO scoring.channel_months (channel, campaign, affiliate, month, currency, "
    "touched, converted, new_customers, clv_historical, clv_predicted, spend) VALUES "
    "(:channel, :campaign, :affiliate, :month, :currency, :touched, :converted, "
    ":new_customers, :clv_historical, :clv_predicted, :spend)"
)
_MONTHS = text(
    "SELECT channel, campaign, affiliate, month, currency, touched, converted, new_customers, "
    "clv_historical, clv_predicted, spend FROM scoring.channel_months "
    "WHERE month BETWEEN :first AND :last"
)


def _month_start(month: str | None) -> datetime | None:
    if month is None:
        return None
    year, number = month.split("-")
    return datetime(int(year), int(number), 1, tzinfo=UTC)


async def _write(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    groups = [
        Acquired(
            r.channel,
            r.campaign,
            r.affiliate,
            _month_start(r.touched),
            _month_start(r.ordered),
            r.currency,
            Decimal(r.clv_historical),
            Decimal(r.clv_predicted),
            customers=r.customers,
        )
        for r in await connection.execute(_ACQUISITIONS)
    ]
    spend = await PostgresScoringStore(connection).spend()
    figures = channel_figures(groups, spend)
    await connection.execute(_CLEAR)
    if figures:
        await connection.execute(
            _SAVE,
            [
                {
                    "channel": f.channel,
                    "campaign": f.campaign,
                    "affiliate": f.affiliate,
                    "month": f.month,
                    "currency": f.currency,
                    "touched": f.touched,
                    "converted": f.converted,
                    "new_customers": f.new_customers,
                    "clv_historical": f.clv_historical,
                    "clv_predicted": f.clv_predicted,
                    "spend": f.spend,
                }
                for f in figures
            ],
        )


CHANNELS_SNAPSHOT = SnapshotPart(_write)


def _stored(r: Any) -> ChannelFigures:
    return ChannelFigures(
        r.channel,
        r.campaign,
        r.affiliate,
        r.month,
        r.currency,
        r.touched,
        r.converted,
        r.new_customers,
        Decimal(r.clv_historical),
        Decimal(r.clv_predicted),
        None if r.spend is None else Decimal(r.spend),
    )


def _amount(amount: Decimal | None) -> float | None:
    return None if amount is None else float(amount)


def _line_view(line: ChannelLine) -> dict[str, Any]:
    channel, campaign, affiliate = line.key
    return {
        "label": line.label,
        "channel": channel or None,
        "campaign": campaign,
        "affiliate": affiliate,
        **economics_view(line.total, _amount),
        "months": [{"month": m.month, **economics_view(m, _amount)} for m in line.by_month],
    }


def routes(engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/channels",
        summary="Per channel, campaign or affiliate (`by`): profiles touched, conversion rate, "
        "new customers, spend, CPA, average CLV and CLV:CPA over the months the range touches "
        "(a month counts whole when any of its days is in the range), and month by month; "
        "money in the currency",
    )
    async def channel_economics(
        start: Start = None,
        end: End = None,
        currency: CurrencyCode = None,
        by: Annotated[
            ChannelBy,
            Query(description="What the rows are: channels, campaigns (of a channel), affiliates"),
        ] = "channel",
    ) -> dict[str, Any]:
        period = period_of(start, end)
        months = months_of(period)
        async with engine.connect() as connection:
            currencies = await AnalyticsStore(connection).currencies()
            found = await connection.execute(_MONTHS, {"first": months[0], "last": months[-1]})
            rows = [_stored(r) for r in found]
        head = Snapshots(currencies, currency or (currencies[0] if currencies else None), [])
        lines = channel_lines(rows, period, head.currency or "", by)
        return {
            **head.head(period),
            "by": by,
            "months": months,
            "rows": [_line_view(line) for line in lines],
        }

    return router

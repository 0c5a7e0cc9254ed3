"""The dashboard's figures in PostgreSQL: the snapshot job's aggregate queries and the daily
rows they write (scoring.daily_figures), read back by the analytics API.

A snapshot measures today's levels from the current state (one pass over scores and orders)
and recomputes every day's revenue from the order ledger, so late and backfilled orders land
on their own day; it replaces what the day's earlier snapshots wrote.
"""

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain.analytics import (
    ALL_CURRENCIES,
    RFM_GRID,
    rfm_cell,
    segment_figure,
)
from services.scoring.store import SEGMENT_FIGURES

_BUYERS = text(
    "SELECT count(*) AS buyers, count(*) FILTER (WHERE orders >= 2) AS repeat_buyers "
    "FROM (SELECT customer_id, count(*) AS orders FROM scoring.orders GROUP BY customer_id) o"
)
_CUSTOMERS = text("SELECT count(*) FROM scoring.profiles")
_CHURN_RISK = text(
    "SELECT avg((record->>'churn_risk')::float) FROM scoring.scores "
    "WHERE record->>'ladder_step' <> 'prospect'"
)
_CLV = text(
    "SELECT record->>'currency' AS currency, "
    "avg((record->>'clv_historical')::float) AS clv_historical, "
    "avg((record->>'clv_predicted')::float) AS clv_predicted "
    "FROM scoring.scores WHERE record->>'ladder_step' <> 'prospect' "
    "AND record->>'currency' IS NOT NULL GROUP BY 1"
)
_REVENUE = text(
    "SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, currency, sum(revenue)::float AS value "
    "FROM scoring.orders WHERE currency IS NOT NULL GROUP BY 1, 2"
)
_RFM_GRID = text(
    "SELECT CAST(record->'rfm'->>'recency' AS int) AS recency, "
    "CAST(record->'rfm'->>'frequency' AS int) AS frequency, record->>'currency' AS currency, "
    "count(*) AS customers, sum(CAST(record->>'clv_historical' AS float)) AS clv_historical "
    "FROM scoring.scores WHERE record->'rfm' IS NOT NULL AND record->>'rfm' <> 'null' "
    "GROUP BY 1, 2, 3"
)
# What a snapshot replaces: today's levels (a segment emptied since the last snapshot must
# not keep its count) and every day's revenue (orders of erased customers leave the ledger).
_CLEAR = text(
    "DELETE FROM scoring.daily_figures WHERE (day = :today AND figure <> 'revenue') "
    "OR figure = 'revenue'"
)
_UPSERT = text(
    "INSERT INTO scoring.daily_figures (day, currency, figure, value, computed_at) "
    "VALUES (:day, :currency, :figure, :value, :at) "
    "ON CONFLICT (day, currency, figure) DO UPDATE "
    "SET value = excluded.value, computed_at = excluded.computed_at"
)
_FIGURES = text(
    "SELECT day, currency, figure, value FROM scoring.daily_figures "
    "WHERE day BETWEEN :start AND :end"
)
_CURRENCIES = text(
    "SELECT DISTINCT currency FROM scoring.daily_figures WHERE currency <> '' ORDER BY 1"
)


# A segment's row: (segment, currency, customers, historical value summed).
_SegmentRow = tuple[str, str | None, float, float | None]


class AnalyticsStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def snapshot(self, today: date, at: datetime) -> int:
        """Write today's levels and every day's revenue; how many rows were written."""
        rows: list[dict[str, object]] = []

        def add(day: date, currency: str, figure: str, value: float | None) -> None:
            if value is not None:
                rows.append(
                    {"day": day, "currency": currency, "figure": figure, "value": value, "at": at}
                )

        customers = await self._connection.scalar(_CUSTOMERS)
        buyers = (await self._connection.execute(_BUYERS)).one()
        add(today, ALL_CURRENCIES, "customers", float(customers or 0))
        add(today, ALL_CURRENCIES, "buyers", float(buyers.buyers))
        if buyers.buyers:
            add(today, ALL_CURRENCIES, "repeat_rate", buyers.repeat_buyers / buyers.buyers)
        add(today, ALL_CURRENCIES, "churn_risk", await self._connection.scalar(_CHURN_RISK))
        for row in await self._connection.execute(_CLV):
            add(today, row.currency, "clv_historical", row.clv_historical)
            add(today, row.currency, "clv_predicted", row.clv_predicted)
        for row in await self._connection.execute(_REVENUE):
            add(row.day, row.currency, "revenue", row.value)

        def add_segments(dimension: str, found: list[_SegmentRow]) -> None:
            """Customers per segment for all currencies, historical value per currency."""
            customers: dict[str, float] = {}
            for segment, currency, count, value in found:
                customers[segment] = customers.get(segment, 0.0) + count
                if currency:
                    name = segment_figure("clv_historical", dimension, segment)
                    add(today, currency, name, float(value or 0))
            for segment, count in customers.items():
                add(today, ALL_CURRENCIES, segment_figure("customers", dimension, segment), count)

        for dimension, statement in SEGMENT_FIGURES.items():
            result = await self._connection.execute(statement)
            add_segments(
                dimension,
                [(r.segment or "none", r.currency, r.customers, r.clv_historical) for r in result],
            )
        result = await self._connection.execute(_RFM_GRID)
        add_segments(
            RFM_GRID,
            [
                (rfm_cell(r.recency, r.frequency), r.currency, r.customers, r.clv_historical)
                for r in result
            ],
        )
        await self._connection.execute(_CLEAR, {"today": today})
        if rows:
            await self._connection.execute(_UPSERT, rows)
        return len(rows)

    async def figures(self, start: date, end: date) -> Sequence[tuple[date, str, str, float]]:
        result = await self._connection.execute(_FIGURES, {"start": start, "end": end})
        return [(r.day, r.currency, r.figure, r.value) for r in result]

    async def currencies(self) -> list[str]:
        return [r[0] for r in await self._connection.execute(_CURRENCIES)]

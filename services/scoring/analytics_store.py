"""The dashboard's figures in PostgreSQL: the daily rows (scoring.daily_figures) the snapshot
job writes and the analytics API reads back.

A snapshot is made of parts, one per page: each measures its figures with aggregate queries,
today's levels from the current state and, for figures kept in a ledger (revenue from the
orders), every day's value again, so late and backfilled orders land on their own day. A
snapshot replaces what the day's earlier snapshots wrote.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain.analytics.figures import ALL_CURRENCIES
from services.scoring.domain.analytics.segments import RFM_GRID, rfm_cell, segment_figure
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
_UPSERT = text(
    "INSERT INTO scoring.daily_figures (day, currency, figure, value, computed_at) "
    "VALUES (:day, :currency, :figure, :value, :at) "
    "ON CONFLICT (day, currency, figure) DO UPDATE "
    "SET value = excluded.value, computed_at = excluded.computed_at"
)
# What a snapshot replaces: today's rows (a segment emptied since the last snapshot must not
# keep its count) and every day's rows of the figures recomputed from a ledger (orders of
# erased customers leave it).
_CLEAR = text("DELETE FROM scoring.daily_figures WHERE day = :today OR figure LIKE ANY(:history)")
_FIGURES = text(
    "SELECT day, currency, figure, value FROM scoring.daily_figures "
    "WHERE day BETWEEN :start AND :end"
)
_CURRENCIES = text(
    "SELECT DISTINCT currency FROM scoring.daily_figures WHERE currency <> '' ORDER BY 1"
)


class DailyRows:
    """The rows one snapshot writes, as its parts measure them."""

    def __init__(self, at: datetime) -> None:
        self._at = at
        self.rows: list[dict[str, object]] = []

    def add(self, day: date, currency: str, figure: str, value: float | None) -> None:
        """One figure's value on a day (`currency` is ALL_CURRENCIES for counts and rates);
        nothing for an unknown value."""
        if value is not None:
            self.rows.append(
                {"day": day, "currency": currency, "figure": figure, "value": value, "at": self._at}
            )


@dataclass(frozen=True, slots=True)
class SnapshotPart:
    """What one page of the dashboard adds to every snapshot.

    `write` measures its figures into the rows: today's levels, and for the figures matching
    one of the `history` patterns (SQL LIKE), every day's value, recomputed from a ledger each
    time, so the rows it wrote before on any day are replaced.
    """

    write: Callable[[AsyncConnection, date, DailyRows], Awaitable[None]]
    history: tuple[str, ...] = ()


async def snapshot(
    connection: AsyncConnection, parts: Sequence[SnapshotPart], today: date, at: datetime
) -> int:
    """Write every part's figures for today (and their history); how many rows."""
    rows = DailyRows(at)
    for part in parts:
        await part.write(connection, today, rows)
    history = [pattern for part in parts for pattern in part.history]
    await connection.execute(_CLEAR, {"today": today, "history": history})
    if rows.rows:
        await connection.execute(_UPSERT, rows.rows)
    return len(rows.rows)


async def _overview(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    customers = await connection.scalar(_CUSTOMERS)
    buyers = (await connection.execute(_BUYERS)).one()
    rows.add(today, ALL_CURRENCIES, "customers", float(customers or 0))
    rows.add(today, ALL_CURRENCIES, "buyers", float(buyers.buyers))
    if buyers.buyers:
        rows.add(today, ALL_CURRENCIES, "repeat_rate", buyers.repeat_buyers / buyers.buyers)
    rows.add(today, ALL_CURRENCIES, "churn_risk", await connection.scalar(_CHURN_RISK))
    for row in await connection.execute(_CLV):
        rows.add(today, row.currency, "clv_historical", row.clv_historical)
        rows.add(today, row.currency, "clv_predicted", row.clv_predicted)
    for row in await connection.execute(_REVENUE):
        rows.add(row.day, row.currency, "revenue", row.value)


OVERVIEW_SNAPSHOT = SnapshotPart(_overview, history=("revenue",))


# A segment's row: (segment, currency, customers, historical value summed).
_SegmentRow = tuple[str, str | None, float, float | None]


async def _segments(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    def add_segments(dimension: str, found: list[_SegmentRow]) -> None:
        """Customers per segment for all currencies, historical value per currency."""
        customers: dict[str, float] = {}
        for segment, currency, count, value in found:
            customers[segment] = customers.get(segment, 0.0) + count
            if currency:
                name = segment_figure("clv_historical", dimension, segment)
                rows.add(today, currency, name, float(value or 0))
        for segment, count in customers.items():
            rows.add(today, ALL_CURRENCIES, segment_figure("customers", dimension, segment), count)

    for dimension, statement in SEGMENT_FIGURES.items():
        result = await connection.execute(statement)
        add_segments(
            dimension,
            [(r.segment or "none", r.currency, r.customers, r.clv_historical) for r in result],
        )
    result = await connection.execute(_RFM_GRID)
    add_segments(
        RFM_GRID,
        [
            (rfm_cell(r.recency, r.frequency), r.currency, r.customers, r.clv_historical)
            for r in result
        ],
    )


SEGMENTS_SNAPSHOT = SnapshotPart(_segments)


class AnalyticsStore:
    """The snapshot rows, read back for the analytics API."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def figures(self, start: date, end: date) -> Sequence[tuple[date, str, str, float]]:
        result = await self._connection.execute(_FIGURES, {"start": start, "end": end})
        return [(r.day, r.currency, r.figure, r.value) for r in result]

    async def currencies(self) -> list[str]:
        return [r[0] for r in await self._connection.execute(_CURRENCIES)]

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
from services.scoring.domain.analytics.overview import rates, running_totals
from services.scoring.domain.analytics.segments import (
    MOVE_DIMENSIONS,
    RFM_GRID,
    SEGMENT_DIMENSIONS,
    move_figure,
    rfm_cell,
    segment_figure,
)

# Customers by the day they were first seen (today for a profile that says none), and buyers
# by the days of their first and second orders: the ledgers the levels' history is read from.
_FIRST_SEEN = text(
    "SELECT least(coalesce(first_seen_on, :today), :today) AS day, count(*) AS customers "
    "FROM scoring.profiles GROUP BY 1"
)
_FIRST_ORDERS = text(
    "SELECT day, count(*) FILTER (WHERE n = 1) AS buyers, "
    "count(*) FILTER (WHERE n = 2) AS repeat_buyers FROM ("
    "SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, "
    "row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at, order_id) AS n "
    "FROM scoring.orders) AS o WHERE n <= 2 GROUP BY day"
)
# The scores every part reads, as a table of the snapshot's transaction: each record's JSON is
# parsed once here, not again for every figure (at a million customers, the difference between
# seconds and a minute).
_SCORES = text(
    "CREATE TEMPORARY TABLE snapshot_scores ON COMMIT DROP AS "
    "SELECT s.customer_id, f.currency, f.clv_historical, f.clv_predicted, f.churn_risk, "
    "f.ladder_step, f.value_tier, f.lifecycle_stage, f.rfm->>'segment' AS rfm_segment, "
    "CAST(f.rfm->>'recency' AS int) AS recency, CAST(f.rfm->>'frequency' AS int) AS frequency "
    "FROM scoring.scores AS s, json_to_record(s.record) AS f(currency text, "
    "clv_historical float8, clv_predicted float8, churn_risk float8, ladder_step text, "
    "value_tier text, lifecycle_stage text, rfm json)"
)
_CHURN_RISK = text("SELECT avg(churn_risk) FROM snapshot_scores WHERE ladder_step <> 'prospect'")
_CLV = text(
    "SELECT currency, avg(clv_historical) AS clv_historical, avg(clv_predicted) AS clv_predicted "
    "FROM snapshot_scores WHERE ladder_step <> 'prospect' AND currency IS NOT NULL GROUP BY 1"
)
_REVENUE = text(
    "SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, currency, sum(revenue)::float AS value "
    "FROM scoring.orders WHERE currency IS NOT NULL GROUP BY 1, 2"
)
_SEGMENTS = {
    dimension: text(
        f"SELECT {dimension} AS segment, currency, count(*) AS customers, "  # noqa: S608
        "sum(clv_historical) AS clv_historical FROM snapshot_scores GROUP BY 1, 2"
    )
    for dimension in SEGMENT_DIMENSIONS
}
_RFM_GRID = text(
    "SELECT recency, frequency, currency, count(*) AS customers, "
    "sum(clv_historical) AS clv_historical FROM snapshot_scores "
    "WHERE recency IS NOT NULL AND frequency IS NOT NULL GROUP BY 1, 2, 3"
)
_MOVES = text(
    "SELECT day, dimension, from_segment, to_segment, count(*) AS customers "
    "FROM scoring.transitions WHERE dimension = ANY(:dimensions) AND from_segment IS NOT NULL "
    "GROUP BY 1, 2, 3, 4"
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
    "WHERE day BETWEEN :start AND :end AND figure LIKE ANY(:figures)"
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

    `write` measures its figures into the rows (reading the scores from the table snapshot_scores
    the snapshot makes, not from scoring.scores): today's levels, and for the figures matching
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
    await connection.execute(_SCORES)
    for part in parts:
        await part.write(connection, today, rows)
    history = [pattern for part in parts for pattern in part.history]
    await connection.execute(_CLEAR, {"today": today, "history": history})
    if rows.rows:
        await connection.execute(_UPSERT, rows.rows)
    return len(rows.rows)


async def _overview(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    first_seen = {
        r.day: float(r.customers) for r in await connection.execute(_FIRST_SEEN, {"today": today})
    }
    orders = (await connection.execute(_FIRST_ORDERS)).all()
    customers = running_totals(first_seen, today)
    buyers = running_totals({r.day: float(r.buyers) for r in orders}, today)
    repeat = running_totals({r.day: float(r.repeat_buyers) for r in orders}, today)
    for name, by_day in (
        ("customers", customers),
        ("buyers", buyers),
        ("repeat_rate", rates(repeat, buyers)),
    ):
        for day, value in by_day.items():
            rows.add(day, ALL_CURRENCIES, name, value)
    rows.add(today, ALL_CURRENCIES, "churn_risk", await connection.scalar(_CHURN_RISK))
    for row in await connection.execute(_CLV):
        rows.add(today, row.currency, "clv_historical", row.clv_historical)
        rows.add(today, row.currency, "clv_predicted", row.clv_predicted)
    for row in await connection.execute(_REVENUE):
        rows.add(row.day, row.currency, "revenue", row.value)


# Customers, buyers and the repeat rate are read back to their first day from the ledgers, so
# a shop's history shows from its first snapshot; the CLV and churn figures come from the
# scores, which only say what they are today.
OVERVIEW_SNAPSHOT = SnapshotPart(
    _overview, history=("revenue", "customers", "buyers", "repeat_rate")
)


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

    for dimension, statement in _SEGMENTS.items():
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


async def _moves(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    """Every day's moves between segments, from the transitions scoring announced (a first
    segment, from none, is not a move)."""
    found = await connection.execute(_MOVES, {"dimensions": list(MOVE_DIMENSIONS)})
    for r in found:
        figure = move_figure(r.dimension, r.from_segment, r.to_segment)
        rows.add(r.day, ALL_CURRENCIES, figure, float(r.customers))


SEGMENTS_SNAPSHOT = SnapshotPart(_segments)
MOVES_SNAPSHOT = SnapshotPart(_moves, history=("moves:%",))


class AnalyticsStore:
    """The snapshot rows, read back for the analytics API."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def figures(
        self, start: date, end: date, figures: Sequence[str] = ("%",)
    ) -> Sequence[tuple[date, str, str, float]]:
        """The rows of the days from `start` to `end` of the figures matching one of the
        patterns (SQL LIKE)."""
        found = {"start": start, "end": end, "figures": list(figures)}
        result = await self._connection.execute(_FIGURES, found)
        return [(r.day, r.currency, r.figure, r.value) for r in result]

    async def currencies(self) -> list[str]:
        return [r[0] for r in await self._connection.execute(_CURRENCIES)]

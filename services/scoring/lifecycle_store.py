"""What the Lifecycle page adds to each daily snapshot: the funnel of every day's first-seen
cohort, from the stored profiles, and the cohort retention triangle, from the order ledger.
Both are history: recomputed for every day each time, as the customers of a past cohort move
on through the funnel and order again. (Stages over time are the segments part's rows.)

Each is one aggregate pass: the funnel counts each stored profile's cohort day and furthest
step (kept beside the snapshot as it is saved, in an index of their own), the triangle one
distinct (customer, month) per month a customer ordered in.
"""

from datetime import date
from itertools import groupby

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.analytics_store import DailyRows, SnapshotPart
from services.scoring.domain.analytics.figures import ALL_CURRENCIES
from services.scoring.domain.analytics.lifecycle import (
    FUNNEL_FIGURES,
    RETENTION_FIGURES,
    funnel_counts,
    funnel_figure,
    retention_cells,
)

# Per first-seen day and furthest step, the customers: an index-only count (profiles_funnel).
_FUNNEL = text(
    "SELECT first_seen_on AS day, funnel_step, count(*) AS customers FROM scoring.profiles "
    "WHERE first_seen_on IS NOT NULL GROUP BY 1, 2 ORDER BY 1"
)
# Per first-order month (UTC) and month, the customers of that cohort who ordered in it.
_RETENTION = text(
    "SELECT cohort, month, count(*) AS customers FROM ("
    "SELECT month, min(month) OVER (PARTITION BY customer_id) AS cohort FROM ("
    "SELECT DISTINCT customer_id, "
    "CAST(date_trunc('month', ordered_at AT TIME ZONE 'UTC') AS date) AS month "
    "FROM scoring.orders) AS months) AS cohorts GROUP BY 1, 2"
)


async def _lifecycle(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    found = await connection.execute(_FUNNEL)
    for day, groups in groupby(found, key=lambda r: r.day):
        counts = funnel_counts((r.funnel_step, r.customers) for r in groups)
        for step, customers in counts.items():
            rows.add(day, ALL_CURRENCIES, funnel_figure(step), float(customers))
    active = [(r.cohort, r.month, r.customers) for r in await connection.execute(_RETENTION)]
    for cohort, figure, returning in retention_cells(active, today):
        rows.add(cohort, ALL_CURRENCIES, figure, returning)


LIFECYCLE_SNAPSHOT = SnapshotPart(_lifecycle, history=(FUNNEL_FIGURES, RETENTION_FIGURES))

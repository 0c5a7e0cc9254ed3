"""What the Lifecycle page adds to each daily snapshot: the funnel of every day's first-seen
cohort, from the stored profiles, and the cohort retention triangle, from the order ledger.
Both are history: recomputed for every day each time, as the customers of a past cohort move
on through the funnel and order again. (Stages over time are the segments part's rows.)

Each is one aggregate pass: the funnel reads four fields of each profile's JSON, the triangle
one distinct (customer, month) per month a customer ordered in.
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
    Progress,
    funnel_counts,
    funnel_figure,
    retention_cells,
)

# Per first-seen day, the customers grouped by the steps they took. The activity object is
# taken apart once per row (json_to_record), not parsed again for each field.
_FUNNEL = text(
    "SELECT CAST(a.first_seen_at AT TIME ZONE 'UTC' AS date) AS day, "
    "coalesce(a.product_views, 0) > 0 AS viewed_product, "
    "coalesce(a.cart_adds, 0) > 0 AS added_to_cart, "
    "coalesce(a.checkouts_started, 0) > 0 AS started_checkout, "
    "coalesce(CAST(json_extract_path_text(p.snapshot, 'commerce', 'orders_count') AS bigint), 0) "
    "> 0 AS ordered, "
    "count(*) AS customers "
    "FROM scoring.profiles AS p CROSS JOIN LATERAL json_to_record(p.snapshot->'activity') "
    "AS a(first_seen_at timestamptz, product_views bigint, cart_adds bigint, "
    "checkouts_started bigint) "
    "WHERE a.first_seen_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 1"
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
        counts = funnel_counts(
            Progress(r.viewed_product, r.added_to_cart, r.started_checkout, r.ordered, r.customers)
            for r in groups
        )
        for step, customers in counts.items():
            rows.add(day, ALL_CURRENCIES, funnel_figure(step), float(customers))
    active = [(r.cohort, r.month, r.customers) for r in await connection.execute(_RETENTION)]
    for cohort, figure, returning in retention_cells(active, today):
        rows.add(cohort, ALL_CURRENCIES, figure, returning)


LIFECYCLE_SNAPSHOT = SnapshotPart(_lifecycle, history=(FUNNEL_FIGURES, RETENTION_FIGURES))

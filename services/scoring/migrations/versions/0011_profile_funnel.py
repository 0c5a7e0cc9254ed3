"""Each stored profile's place in the dashboard's funnel, kept beside its snapshot as it is
saved, so the daily snapshot counts a million customers from a narrow index instead of
parsing every profile's JSON:

- first_seen_on: the day (UTC) the customer was first seen, their funnel cohort;
- funnel_step: the furthest step reached (0 visit, 1 product view, 2 cart, 3 checkout,
  4 order), by the rules of services/scoring/domain/analytics/lifecycle.py.

Profiles stored before are filled in here from their JSON by the same rules: a rewrite of the
table, once (100 to 135 s for a million profiles in bench/scoring/lifecycle.py).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# furthest_step() in SQL, for the profiles saved before this revision.
_FILL = """
UPDATE scoring.profiles AS p SET
    first_seen_on = CAST(a.first_seen_at AT TIME ZONE 'UTC' AS date),
    funnel_step = CASE
        WHEN coalesce(CAST(p.snapshot->'commerce'->>'orders_count' AS bigint), 0) > 0 THEN 4
        WHEN coalesce(a.checkouts_started, 0) > 0 THEN 3
        WHEN coalesce(a.cart_adds, 0) > 0 THEN 2
        WHEN coalesce(a.product_views, 0) > 0 THEN 1
        ELSE 0 END
FROM scoring.profiles AS q CROSS JOIN LATERAL json_to_record(q.snapshot->'activity')
    AS a(first_seen_at timestamptz, product_views bigint, cart_adds bigint,
         checkouts_started bigint)
WHERE q.customer_id = p.customer_id AND a.first_seen_at IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("profiles", sa.Column("first_seen_on", sa.Date), schema="scoring")
    op.add_column("profiles", sa.Column("funnel_step", sa.SmallInteger), schema="scoring")
    op.execute(_FILL)
    op.create_index(
        "profiles_funnel", "profiles", ["first_seen_on", "funnel_step"], schema="scoring"
    )


def downgrade() -> None:
    op.drop_index("profiles_funnel", table_name="profiles", schema="scoring")
    op.drop_column("profiles", "funnel_step", schema="scoring")
    op.drop_column("profiles", "first_seen_on", schema="scoring")

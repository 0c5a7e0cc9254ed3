"""The dashboard's history: one row per day, currency and figure, written by the daily
snapshot job, so trends survive refits and restarts and no page scans customers.

`currency` is '' for figures that are not amounts (counts, rates).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_figures",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("figure", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", "figure"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("daily_figures", schema="scoring")

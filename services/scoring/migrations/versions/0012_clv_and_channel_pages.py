"""The dashboard's CLV and Channels pages: what the snapshot job precomputes for them beyond the
daily figures, replaced whole by every snapshot.

- top_customers: the customers with the highest predicted and historical CLV per currency
  (`ranking` says which), so the page never sorts every customer's scores;
- channel_months: channel economics per channel, campaign, affiliate, month and currency (the
  rows of GET /v1/channels), so the page never reads every profile.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "top_customers",
        sa.Column("ranking", sa.String(16), nullable=False),  # clv_predicted, clv_historical
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("clv_historical", sa.Float, nullable=False),
        sa.Column("clv_predicted", sa.Float, nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("ladder_step", sa.String(32), nullable=False),
        sa.Column("value_tier", sa.String(32), nullable=False),
        sa.Column("rfm_segment", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("ranking", "currency", "rank"),
        schema="scoring",
    )
    op.create_table(
        "channel_months",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("campaign", sa.Text, nullable=True),
        sa.Column("affiliate", sa.Text, nullable=True),
        sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM
        sa.Column("currency", sa.String(3), nullable=True),  # none: prospects, no order yet
        sa.Column("touched", sa.Integer, nullable=False),
        sa.Column("converted", sa.Integer, nullable=False),
        sa.Column("new_customers", sa.Integer, nullable=False),
        sa.Column("clv_historical", sa.Numeric(24, 4), nullable=False),  # summed
        sa.Column("clv_predicted", sa.Numeric(24, 4), nullable=False),
        sa.Column("spend", sa.Numeric(24, 4), nullable=True),
        schema="scoring",
    )
    op.create_index("channel_months_by_month", "channel_months", ["month"], schema="scoring")


def downgrade() -> None:
    op.drop_table("channel_months", schema="scoring")
    op.drop_table("top_customers", schema="scoring")

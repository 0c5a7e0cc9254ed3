"""Every stage and segment change scoring announced (stage_changed, segment_changed on
lifecycle.v1), kept: a customer's ladder step and stage history for the dashboard, and moves
between segments per day (a sankey between two dates) without replaying the topic.

`event_id` is the announcement's id, so a change recorded again (a redelivered batch) is one
row. Indexed by customer (one customer's history) and by day and dimension (the moves of a
range of days).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transitions",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("from_segment", sa.String(64), nullable=True),
        sa.Column("to_segment", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),  # `at`'s UTC day
        schema="scoring",
    )
    op.create_index(
        "transitions_by_customer", "transitions", ["customer_id", "at"], schema="scoring"
    )
    op.create_index("transitions_by_day", "transitions", ["day", "dimension"], schema="scoring")


def downgrade() -> None:
    op.drop_table("transitions", schema="scoring")

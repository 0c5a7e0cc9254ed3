"""The Email page's facts, from notifications.v1:

- email_daily: how many emails were sent, suppressed (per reason), bounced, left uncertain,
  opened, clicked and unsubscribed from, per day, journey and template (counters the consumer
  adds to in the transaction that records its offsets);
- email_counted: which (notification, type) were counted, so a redelivery or a second
  publication of the same fact counts once; an email opened twice is one email opened;
- email_clicks: every click (customer, email, journey, template, when), so the snapshot can
  attribute orders to the last click before them; deleted with the customer on erasure.

daily_figures' names grow to hold a journey and a template id (email_orders:<journey>:<template>).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "email_daily",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("journey", sa.String(256), nullable=False),  # '' for an email of no journey
        sa.Column("template", sa.String(256), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),  # '' unless suppressed
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", "journey", "template", "type", "reason"),
        schema=SCHEMA,
    )
    op.create_table(
        "email_counted",
        sa.Column("notification_id", sa.String(256), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "type"),
        schema=SCHEMA,
    )
    op.create_table(
        "email_clicks",
        sa.Column("event_id", sa.String(256), primary_key=True),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("notification_id", sa.String(256), nullable=False),
        sa.Column("journey", sa.String(256), nullable=False),
        sa.Column("template", sa.String(256), nullable=False),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "email_clicks_customer", "email_clicks", ["customer_id", "clicked_at"], schema=SCHEMA
    )
    op.alter_column(
        "daily_figures", "figure", type_=sa.Text, existing_nullable=False, schema=SCHEMA
    )


def downgrade() -> None:
    op.execute("DELETE FROM scoring.daily_figures WHERE length(figure) > 64")
    op.alter_column(
        "daily_figures", "figure", type_=sa.String(64), existing_nullable=False, schema=SCHEMA
    )
    for table in ("email_clicks", "email_counted", "email_daily"):
        op.drop_table(table, schema=SCHEMA)

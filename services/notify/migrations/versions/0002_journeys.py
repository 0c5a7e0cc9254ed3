"""The notify schema: what notify knows of each customer, their journeys, and every email.

- recipients: the latest profiles.v1 snapshot and scores.v1 record per customer;
- customers: each customer's journey state (the engine's JSON) and their next wake-up;
- notifications: one row per intended email (its notification id), from the decision to send
  to the SMTP answer: pending, sending, sent, uncertain, bounced, failed, suppressed;
- suppressions: addresses nothing is sent to (unsubscribed, hard bounce, complaint, an operator);
- journey_counts: per journey, runs entered and ended by reason, for the API;
- the consumer kit's outbox, outbox_parked and consumer_offsets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from services.runtime.kit_schema import create_kit_tables, drop_kit_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "notify"


def upgrade() -> None:
    create_kit_tables(op, SCHEMA)
    op.create_table(
        "recipients",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("profile_revision", sa.BigInteger, nullable=True),
        sa.Column("profile", sa.JSON, nullable=True),
        sa.Column("scores", sa.JSON, nullable=True),
        sa.Column("tracking", sa.Boolean, nullable=False, server_default=sa.true()),
        schema=SCHEMA,
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "customers_wake_at",
        "customers",
        ["wake_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("wake_at IS NOT NULL"),
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("template", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger_event_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("send", sa.JSON, nullable=True),  # the engine's Send, until delivered
        sa.Column("to_address", sa.String(320), nullable=True),
        sa.Column("message_id", sa.String(512), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "notifications_due",
        "notifications",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_index(
        "notifications_customer", "notifications", ["customer_id", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(320), primary_key=True),  # lower-cased
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "journey_counts",
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("counter", sa.String(64), nullable=False),  # entered, exited:<reason>
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("journey", "counter"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("journey_counts", "suppressions", "notifications", "customers", "recipients"):
        op.drop_table(table, schema=SCHEMA)
    drop_kit_tables(op, SCHEMA)

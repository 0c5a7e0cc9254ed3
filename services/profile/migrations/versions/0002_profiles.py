"""Customers, identities, merges, folded touchpoints, erasures, the outbox and consumer offsets.

Revision ID: 0002
Revises: 0001
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "profile"


def _now() -> "sa.Column[datetime]":
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(256), nullable=True, unique=True),
        sa.Column("email", sa.String(320), nullable=True, index=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("snapshot", JSONB, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("net_revenue", sa.Numeric(20, 4), nullable=False, server_default="0"),
        sa.Column("orders_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("referred_by", sa.String(64), nullable=True, index=True),
        _now(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "identities",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False, index=True),
        sa.PrimaryKeyConstraint("kind", "value"),
        schema=SCHEMA,
    )
    op.create_table(
        "merged_customers",
        sa.Column("absorbed_id", sa.String(64), primary_key=True),
        sa.Column("survivor_id", sa.String(64), nullable=False, index=True),
        sa.Column(
            "merged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "touchpoints",
        sa.Column("source_id", sa.String(256), nullable=False),
        sa.Column("message_id", sa.String(256), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("payload", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "message_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "touchpoints_customer_time", "touchpoints", ["customer_id", "occurred_at"], schema=SCHEMA
    )
    op.create_table(
        "erasures",
        sa.Column("identity_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
        _now(),
        schema=SCHEMA,
    )
    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "consumer_offsets",
        "outbox",
        "erasures",
        "touchpoints",
        "merged_customers",
        "identities",
        "customers",
    ):
        op.drop_table(table, schema=SCHEMA)

"""The scoring schema: what scoring knows of each customer, their orders, and their scores.

- profiles: the latest profiles.v1 snapshot per customer (highest revision wins);
- orders: the per-order ledger from lifecycle.v1 order_completed (unique per customer and order);
- scores: the latest scores.v1 record published per customer, with its standing and revision;
- the consumer kit's outbox, outbox_parked and consumer_offsets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from services.runtime.kit_schema import create_kit_tables, drop_kit_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "scoring"


def upgrade() -> None:
    create_kit_tables(op, SCHEMA)
    op.create_table(
        "profiles",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "orders",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(256), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revenue", sa.Numeric(20, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("categories", ARRAY(sa.String(1024)), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("customer_id", "order_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "scores",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),  # scores.v1 as last published
        sa.Column("standing", sa.JSON, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("scores", "orders", "profiles"):
        op.drop_table(table, schema=SCHEMA)
    drop_kit_tables(op, SCHEMA)

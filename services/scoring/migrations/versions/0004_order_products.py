"""The products of each order in the ledger, for co-purchase recommendations.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("products", ARRAY(sa.String(256)), nullable=False, server_default="{}"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_column("orders", "products", schema="scoring")

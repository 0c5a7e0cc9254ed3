"""The lines of each order in the ledger (product, category, unit price), for upgrades.

Orders stored before keep an empty list: they still count for co-purchases, not for prices.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("lines", sa.JSON, nullable=False, server_default="[]"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_column("orders", "lines", schema="scoring")

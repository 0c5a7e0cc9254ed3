"""Marketing spend per channel (and campaign) and month, for channel economics.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("campaign", sa.String(256), nullable=False),  # "": the whole channel
        sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("channel", "campaign", "month", "currency"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("spend", schema="scoring")

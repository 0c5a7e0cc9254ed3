"""The models of each refit, versioned: what every customer is scored with until the next.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model", sa.JSON, nullable=False),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("models", schema="scoring")

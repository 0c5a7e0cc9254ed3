"""Journeys an operator paused (`retain journeys pause`), with who paused them and when.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "notify"


def upgrade() -> None:
    op.create_table(
        "journey_pauses",
        sa.Column("journey", sa.String(64), primary_key=True),
        sa.Column("paused_by", sa.String(200), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("journey_pauses", schema=SCHEMA)

"""Scoring's erasure ledger: when each erased customer was erased, so what is dated at or before
it and reaches scoring late (profiles.v1 and lifecycle.v1 are consumed apart) is dropped.

Like `profile.erasures`, it keeps a hash of the customer id, not the id itself: after an erasure
no scoring row names the customer.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("customer_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("erasures", schema="scoring")

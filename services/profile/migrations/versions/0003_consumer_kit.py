"""The consumer kit's parked-outbox table; customers' currency and named referrer.

- outbox_parked: outbox messages that can never be published, with the reason;
- customers.currency: the currency of net_revenue, so referral figures sum per currency;
- customers.referrer_user_id: the referrer named in the state, so the fold can lock the
  referrer's row together with the batch's own before reading any state.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from services.runtime.kit_schema import create_kit_tables, drop_kit_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "profile"


def upgrade() -> None:
    create_kit_tables(op, SCHEMA, ("outbox_parked",))
    op.add_column("customers", sa.Column("currency", sa.String(3), nullable=True), schema=SCHEMA)
    op.add_column(
        "customers", sa.Column("referrer_user_id", sa.String(256), nullable=True), schema=SCHEMA
    )
    op.execute(
        "UPDATE profile.customers SET "
        "currency = snapshot -> 'commerce' ->> 'currency', "
        "referrer_user_id = state -> 'referrer_user_id' ->> 'value'"
    )


def downgrade() -> None:
    op.drop_column("customers", "referrer_user_id", schema=SCHEMA)
    op.drop_column("customers", "currency", schema=SCHEMA)
    drop_kit_tables(op, SCHEMA, ("outbox_parked",))

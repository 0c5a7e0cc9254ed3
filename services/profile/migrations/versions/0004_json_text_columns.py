"""Store customer states, snapshots and touchpoint payloads as json (text), not jsonb.

The service writes each of them whole and reads them whole; PostgreSQL never looks inside
but for two search filters, which json serves as well. jsonb made every write parse the
document into its binary form and every read print it back, the largest part of the
database's work per event (bench/profile/NOTES.md).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (("customers", "state"), ("customers", "snapshot"), ("touchpoints", "payload"))


def _retype(to: str) -> None:
    for table, column in COLUMNS:
        op.execute(
            f"ALTER TABLE profile.{table} ALTER COLUMN {column} TYPE {to} USING {column}::{to}"
        )


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")

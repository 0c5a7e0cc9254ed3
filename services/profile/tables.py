"""The profile schema.

- customers: one row per customer; `state` is the mergeable fold state (domain.ProfileState).
- identities: userId / anonymousId -> customer; merged_customers: absorbed id -> survivor.
- touchpoints: every event folded, unique per (source, messageId), so redelivery folds nothing.
- erasures: hashed identities of erased customers and when; older events for them are ignored.
- outbox, outbox_parked, consumer_offsets: the transactional consumer kit's tables
  (services/runtime/kit_schema.py).
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSON

from services.runtime.kit_schema import kit_tables

metadata = MetaData(schema="profile")

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("user_id", String(256), nullable=True, unique=True),
    Column("email", String(320), nullable=True, index=True),
    # json, not jsonb: written and read whole, so PostgreSQL need not parse them (0004)
    Column("state", JSON, nullable=False),
    Column("snapshot", JSON, nullable=False),  # the latest profiles.v1 value, served as is
    Column("revision", BigInteger, nullable=False),
    # net revenue in `currency`, the customer's main currency: referral figures sum it per currency
    Column("net_revenue", Numeric(20, 4), nullable=False, server_default="0"),
    Column("currency", String(3), nullable=True),
    Column("orders_count", Integer, nullable=False, server_default="0"),
    Column("referred_by", String(64), nullable=True, index=True),
    # the referrer named in the state, so its row can be locked before the state is read
    Column("referrer_user_id", String(256), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

identities = Table(
    "identities",
    metadata,
    Column("kind", String(8), nullable=False),  # "user" or "anon"
    Column("value", String(256), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    PrimaryKeyConstraint("kind", "value"),
)

merged_customers = Table(
    "merged_customers",
    metadata,
    Column("absorbed_id", String(64), primary_key=True),
    Column("survivor_id", String(64), nullable=False, index=True),
    Column("merged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

touchpoints = Table(
    "touchpoints",
    metadata,
    Column("source_id", String(256), nullable=False),
    Column("message_id", String(256), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("type", String(16), nullable=False),
    Column("name", String(256), nullable=True),
    Column("payload", JSON, nullable=False),
    PrimaryKeyConstraint("source_id", "message_id"),
    Index("touchpoints_customer_time", "customer_id", "occurred_at"),
)

erasures = Table(
    "erasures",
    metadata,
    Column("identity_hash", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

kit = kit_tables(metadata)

"""The profile schema.

- customers: one row per customer; `state` is the mergeable fold state (domain.ProfileState).
- identities: userId / anonymousId -> customer; merged_customers: absorbed id -> survivor.
- touchpoints: every event folded, unique per (source, messageId), so redelivery folds nothing.
- erasures: hashed identities of erased customers and when; older events for them are ignored.
- outbox: messages committed with the state change, published by the relay (no dual write).
- consumer_offsets: consumer progress, committed in the same transaction as the effects.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="profile")

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("user_id", String(256), nullable=True, unique=True),
    Column("email", String(320), nullable=True, index=True),
    Column("state", JSONB, nullable=False),
    Column("snapshot", JSONB, nullable=False),  # the latest profiles.v1 value, served as is
    Column("revision", BigInteger, nullable=False),
    Column("net_revenue", Numeric(20, 4), nullable=False, server_default="0"),
    Column("orders_count", Integer, nullable=False, server_default="0"),
    Column("referred_by", String(64), nullable=True, index=True),
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
    Column("payload", JSONB, nullable=False),
    PrimaryKeyConstraint("source_id", "message_id"),
    Index("touchpoints_customer_time", "customer_id", "occurred_at"),
)

erasures = Table(
    "erasures",
    metadata,
    Column("identity_hash", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("topic", String(128), nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=True),  # None: a tombstone
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(128), nullable=False),
    Column("topic", String(128), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "topic", "partition"),
)

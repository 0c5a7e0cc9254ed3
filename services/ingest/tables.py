"""The ingest schema: sources (storefronts) and their hashed write keys."""

from sqlalchemy import Column, DateTime, ForeignKey, MetaData, String, Table, func

metadata = MetaData(schema="ingest")

sources = Table(
    "sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

write_keys = Table(
    "write_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False),
    Column("source_id", String(64), ForeignKey("ingest.sources.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

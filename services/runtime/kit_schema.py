"""The tables of the transactional consumer kit, in the schema of the service that uses it.

- outbox: messages committed with the state change they announce (services.runtime.outbox);
- outbox_parked: messages that can never be published, with the reason, for an operator;
- consumer_offsets: consumer progress, committed in the same transaction as the effects.

A service's migration creates them with `create_kit_tables(op, "<schema>")`.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)

KIT_TABLES = ("outbox", "outbox_parked", "consumer_offsets")


@dataclass(frozen=True)
class KitTables:
    outbox: Table
    outbox_parked: Table
    consumer_offsets: Table


def kit_tables(metadata: MetaData) -> KitTables:
    """Define the kit's tables on a service's metadata (its schema is the metadata's)."""

    def created_at() -> Column[Any]:
        return Column(
            "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        )

    return KitTables(
        outbox=Table(
            "outbox",
            metadata,
            Column("id", BigInteger, Identity(), primary_key=True),
            Column("topic", String(128), nullable=False),
            Column("key", LargeBinary, nullable=True),
            Column("value", LargeBinary, nullable=True),  # None: a tombstone
            created_at(),
        ),
        outbox_parked=Table(
            "outbox_parked",
            metadata,
            Column("id", BigInteger, primary_key=True),  # its id in the outbox
            Column("topic", String(128), nullable=False),
            Column("key", LargeBinary, nullable=True),
            Column("value", LargeBinary, nullable=True),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("reason", Text, nullable=False),
        ),
        consumer_offsets=Table(
            "consumer_offsets",
            metadata,
            Column("group_id", String(128), nullable=False),
            Column("topic", String(128), nullable=False),
            Column("partition", Integer, nullable=False),
            Column("next_offset", BigInteger, nullable=False),
            PrimaryKeyConstraint("group_id", "topic", "partition"),
        ),
    )


def create_kit_tables(op: Any, schema: str, names: tuple[str, ...] = KIT_TABLES) -> None:
    """For a migration's upgrade(): create the kit's tables (all, or those named) in `schema`."""
    tables = kit_tables(MetaData(schema=schema))
    for name in names:
        getattr(tables, name).create(op.get_bind())


def drop_kit_tables(op: Any, schema: str, names: tuple[str, ...] = KIT_TABLES) -> None:
    """For a migration's downgrade()."""
    for name in reversed(names):
        op.drop_table(name, schema=schema)

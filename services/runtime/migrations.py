"""The body of every service's Alembic env.py: online migrations over asyncpg, in one schema.

A service's migrations/env.py is two lines: import `run_migrations_online` and call it.
"""

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def _upgrade(connection: Connection, schema: str) -> None:
    # One migrator at a time per schema: replicas of a service may start together.
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"retain:{schema}"}
    )
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run(url: str, schema: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, schema)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    config = context.config
    schema = config.attributes.get("schema")
    if not isinstance(schema, str):
        raise RuntimeError("migrations must be run through services.runtime.db.run_migrations")
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not configured")
    asyncio.run(_run(url, schema))

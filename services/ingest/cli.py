"""Write-key management: `retain keys create SOURCE | list | revoke KEY_ID`."""

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a command runs: `retain`'s other commands start faster
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.ingest.keys import WriteKeyRepository


def add_commands(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a write key for a source (storefront)")
    create.add_argument("source", help="the source's name, e.g. my-shop; created if new")
    actions.add_parser("list", help="list write keys (hints only; keys are stored hashed)")
    revoke = actions.add_parser("revoke", help="revoke a write key by its id (see `list`)")
    revoke.add_argument("key_id")


async def _open(database_url: str) -> tuple["AsyncEngine", "WriteKeyRepository"]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.ingest.keys import WriteKeyRepository
    from services.runtime.db import run_migrations
    from services.runtime.settings import Environment, ServiceSettings

    settings = ServiceSettings(env=Environment.LOCAL, database_url=database_url)
    await run_migrations(settings, "ingest")
    engine = create_async_engine(database_url)
    return engine, WriteKeyRepository(engine)


async def register_dev_write_key(database_url: str, key: str) -> None:
    """The local stack's write key, for the `dev` source, so `make run` works out of the box."""
    engine, repository = await _open(database_url)
    try:
        await repository.ensure("dev", key)
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace, database_url: str) -> str:
    """Carry out a keys command against the ingest schema; returns what to print."""
    from services.ingest.keys import UnknownKeyError

    engine, repository = await _open(database_url)
    try:
        if args.action == "create":
            created = await repository.create(args.source)
            return (
                f"write key for source {created.source.name!r} (id {created.id}):\n"
                f"  {created.key}\n"
                "It is shown only now; store it in the storefront's SDK configuration."
            )
        if args.action == "list":
            rows = await repository.list()
            lines = [f"{'id':<18} {'source':<24} {'key':<12} {'created':<20} status"]
            for key_id, info in rows:
                status = (
                    f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                )
                lines.append(
                    f"{key_id:<18} {info.source.name:<24} {info.key_hint:<12} "
                    f"{info.created_at:%Y-%m-%d %H:%M:%S}  {status}"
                )
            return "\n".join(lines)
        try:
            await repository.revoke(args.key_id)
        except UnknownKeyError as error:
            raise SystemExit(f"retain: {error}") from None
        return f"revoked {args.key_id}; it is refused within the key cache time (5 s by default)"
    finally:
        await engine.dispose()

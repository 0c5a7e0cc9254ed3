"""The identity locks the fold and erasure share, so neither sees the other half done."""

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.profile.domain.identity import Identity, advisory_lock_key

_LOCK = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


async def lock_identities(connection: AsyncConnection, identities: Iterable[Identity]) -> None:
    """Transaction-scoped locks on identities, always taken in the same (sorted) order."""
    keys = sorted({advisory_lock_key(identity) for identity in identities})
    if keys:
        await connection.execute(_LOCK, {"keys": keys})

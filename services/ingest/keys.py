"""Write-key storage and lookup (the I/O shell around domain/keys.py)."""

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.domain.keys import (
    Source,
    WriteKeyInfo,
    hash_write_key,
    key_hint,
    new_write_key,
)
from services.ingest.tables import sources, write_keys


class UnknownKeyError(LookupError):
    pass


@dataclass(frozen=True)
class CreatedKey:
    id: str
    key: str  # shown once; only its hash is stored
    source: Source


class WriteKeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, source_name: str, key: str | None = None) -> CreatedKey:
        """A new key for the named source, creating the source on first use."""
        key = key or new_write_key()
        async with self._engine.begin() as connection:
            source_id = await connection.scalar(
                select(sources.c.id).where(sources.c.name == source_name)
            )
            if source_id is None:
                source_id = f"src_{secrets.token_hex(6)}"
                await connection.execute(insert(sources).values(id=source_id, name=source_name))
            key_id = f"key_{secrets.token_hex(6)}"
            await connection.execute(
                insert(write_keys).values(
                    id=key_id,
                    key_hash=hash_write_key(key),
                    key_hint=key_hint(key),
                    source_id=source_id,
                )
            )
        return CreatedKey(key_id, key, Source(source_id, source_name))

    async def ensure(self, source_name: str, key: str) -> None:
        """Register `key` for the source unless it is already known (the local dev key)."""
        async with self._engine.connect() as connection:
            known = await connection.scalar(
                select(func.count()).where(write_keys.c.key_hash == hash_write_key(key))
            )
        if not known:
            await self.create(source_name, key)

    async def list(self) -> list[tuple[str, WriteKeyInfo]]:
        query = select(write_keys, sources.c.name).join(sources).order_by(write_keys.c.created_at)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            (
                row.id,
                WriteKeyInfo(
                    key_hash=row.key_hash,
                    key_hint=row.key_hint,
                    source=Source(row.source_id, row.name),
                    created_at=row.created_at,
                    revoked_at=row.revoked_at,
                ),
            )
            for row in rows
        ]

    async def revoke(self, key_id: str) -> None:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(write_keys)
                .where(write_keys.c.id == key_id, write_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if result.rowcount == 0:
            raise UnknownKeyError(f"no active write key with id {key_id!r}")

    async def source_for(self, key: str) -> Source | None:
        """The source owning an active key, or None for unknown and revoked keys."""
        query = (
            select(sources.c.id, sources.c.name)
            .join(write_keys)
            .where(write_keys.c.key_hash == hash_write_key(key), write_keys.c.revoked_at.is_(None))
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return Source(row.id, row.name) if row else None


class CachedKeyLookup:
    """Remembers lookups for a few seconds: no database round trip per tracking call.

    Revocation therefore takes effect within `ttl_seconds` (RETAIN_WRITE_KEY_CACHE_SECONDS).
    """

    def __init__(self, repository: WriteKeyRepository, ttl_seconds: float) -> None:
        self._repository = repository
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Source | None]] = {}
        # One database look-up per key at a time: when an entry expires under load, the
        # concurrent requests for that key wait for the same answer.
        self._in_flight: dict[str, asyncio.Task[Source | None]] = {}

    async def source_for(self, key: str) -> Source | None:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        lookup = self._in_flight.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._repository.source_for(key))
            self._in_flight[key] = lookup
            lookup.add_done_callback(lambda _: self._in_flight.pop(key, None))
        source = await asyncio.shield(lookup)
        if self._ttl > 0:
            if len(self._cache) > 10_000:  # unknown keys must not grow it without bound
                self._cache.clear()
            self._cache[key] = (now, source)
        return source

"""Write-key storage and lookup (the I/O shell around domain/keys.py)."""

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

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

_V = TypeVar("_V")


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


class KeyRepository(Protocol):
    async def source_for(self, key: str) -> Source | None: ...


# Keys are 35 characters (`new_write_key`); anything much longer is refused without a look-up,
# so neither the caches nor the database see arbitrary amounts of attacker text.
MAX_WRITE_KEY_LENGTH = 200
# Look-ups of keys not known to be valid that may wait for the database at once: a spray of
# random keys queues here, leaving the other pool connections to refresh the valid keys.
UNKNOWN_LOOKUPS_AT_ONCE = 4


class CachedKeyLookup:
    """Remembers look-ups for `ttl_seconds`: no database round trip per tracking call.

    Valid and unknown keys are remembered apart, each in a cache of bounded size that drops its
    oldest entry first, so a spray of random keys only ever evicts other random keys: valid keys
    keep being answered from memory, and at most UNKNOWN_LOOKUPS_AT_ONCE look-ups of keys not
    known to be valid reach the database together. Revocation therefore takes effect within
    `ttl_seconds` (RETAIN_WRITE_KEY_CACHE_SECONDS), as does a new key that was tried before it
    existed.
    """

    def __init__(
        self,
        repository: KeyRepository,
        ttl_seconds: float,
        *,
        max_valid: int = 10_000,
        max_unknown: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl_seconds
        self._clock = clock
        # key -> (when looked up, source); insertion order is look-up order, oldest first.
        # Entries past the ttl are kept until evicted: a key once valid is refreshed first.
        self._valid: OrderedDict[str, tuple[float, Source]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._max_valid = max_valid
        self._max_unknown = max_unknown
        self._unknown_lookups = asyncio.Semaphore(UNKNOWN_LOOKUPS_AT_ONCE)
        # One database look-up per key at a time: when an entry expires under load, the
        # concurrent requests for that key wait for the same answer.
        self._in_flight: dict[str, asyncio.Task[Source | None]] = {}

    async def source_for(self, key: str) -> Source | None:
        if len(key) > MAX_WRITE_KEY_LENGTH:
            return None
        now = self._clock()
        valid = self._valid.get(key)
        if valid is not None and now - valid[0] < self._ttl:
            return valid[1]
        unknown_since = self._unknown.get(key)
        if unknown_since is not None and now - unknown_since < self._ttl:
            return None
        lookup = self._in_flight.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(key, known_valid=valid is not None))
            self._in_flight[key] = lookup
            lookup.add_done_callback(lambda _: self._in_flight.pop(key, None))
        source = await asyncio.shield(lookup)
        if self._ttl > 0:
            self._remember(key, source, now)
        return source

    async def _look_up(self, key: str, *, known_valid: bool) -> Source | None:
        if known_valid:
            return await self._repository.source_for(key)
        async with self._unknown_lookups:
            return await self._repository.source_for(key)

    def _remember(self, key: str, source: Source | None, now: float) -> None:
        if source is None:
            self._valid.pop(key, None)
            _put(self._unknown, key, now, self._max_unknown)
        else:
            self._unknown.pop(key, None)
            _put(self._valid, key, (now, source), self._max_valid)


def _put(cache: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    cache.pop(key, None)  # re-inserted at the end: the order stays the order of look-ups
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)

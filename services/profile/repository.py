"""Profile reads, export and erasure (the read side of the profile schema)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import Select, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.profile.domain.batch import erasure_announcements
from services.profile.domain.identity import Identity, identity_hash
from services.profile.store import lock_identities
from services.profile.tables import (
    customers,
    erasures,
    identities,
    merged_customers,
    touchpoints,
)
from services.runtime.outbox import Outbox
from services.runtime.params import DbDatetime, NulFree


@dataclass(frozen=True)
class CustomerFilter:
    user_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None
    consent: str | None = None
    has_orders: bool | None = None
    min_net_revenue: float | None = None
    updated_since: datetime | None = None


@dataclass(frozen=True)
class TimelinePosition:
    """A touchpoint's place in a timeline: newest first, then by its unique key."""

    occurred_at: DbDatetime
    message_id: Annotated[str, NulFree]
    source_id: Annotated[str, NulFree]


@dataclass(frozen=True)
class TimelinePage:
    touchpoints: list[dict[str, Any]]
    next: TimelinePosition | None  # where the next page starts; None on the last page


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    identities: int
    touchpoints: int


class ProfileRepository:
    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    async def resolve(self, connection: AsyncConnection, customer_id: str) -> str:
        """A merged-away id resolves to the customer that absorbed it."""
        survivor = await connection.scalar(
            select(merged_customers.c.survivor_id).where(
                merged_customers.c.absorbed_id == customer_id
            )
        )
        return survivor or customer_id

    async def get(self, customer_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as connection:
            resolved = await self.resolve(connection, customer_id)
            snapshot: dict[str, Any] | None = await connection.scalar(
                select(customers.c.snapshot).where(customers.c.customer_id == resolved)
            )
            return snapshot

    async def search(
        self, where: CustomerFilter, *, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        """Customers matching every given filter, ordered by id, `limit` after cursor `after`."""
        query: Select[Any] = select(customers.c.snapshot).order_by(customers.c.customer_id)
        if where.user_id is not None:
            query = query.join(identities, identities.c.customer_id == customers.c.customer_id)
            query = query.where(identities.c.kind == "user", identities.c.value == where.user_id)
        if where.anonymous_id is not None:
            anon = identities.alias("anon")
            query = query.join(anon, anon.c.customer_id == customers.c.customer_id)
            query = query.where(anon.c.kind == "anon", anon.c.value == where.anonymous_id)
        if where.email is not None:
            query = query.where(customers.c.email == where.email.lower())
        if where.consent is not None:
            consent = customers.c.snapshot["consent"]["email_marketing"].astext
            query = query.where(consent == where.consent)
        if where.has_orders is not None:
            query = query.where(
                customers.c.orders_count > 0 if where.has_orders else customers.c.orders_count == 0
            )
        if where.min_net_revenue is not None:
            query = query.where(customers.c.net_revenue >= where.min_net_revenue)
        if where.updated_since is not None:
            query = query.where(customers.c.updated_at >= where.updated_since)
        if after is not None:
            query = query.where(customers.c.customer_id > after)
        async with self._engine.connect() as connection:
            return list((await connection.scalars(query.limit(limit))).all())

    async def timeline(
        self,
        customer_id: str,
        *,
        limit: int,
        before: datetime | None,
        after: TimelinePosition | None,
    ) -> TimelinePage | None:
        """The customer's touchpoints newest first, `limit` after `after`; None if no customer."""
        async with self._engine.connect() as connection:
            resolved = await self.resolve(connection, customer_id)
            exists = await connection.scalar(
                select(func.count()).where(customers.c.customer_id == resolved)
            )
            if not exists:
                return None
            touchpoint = touchpoints.c
            # One row more than asked tells whether another page follows.
            query = (
                select(
                    touchpoint.payload,
                    touchpoint.occurred_at,
                    touchpoint.message_id,
                    touchpoint.source_id,
                )
                .where(touchpoint.customer_id == resolved)
                .order_by(
                    touchpoint.occurred_at.desc(), touchpoint.message_id, touchpoint.source_id
                )
                .limit(limit + 1)
            )
            if before is not None:
                query = query.where(touchpoint.occurred_at < before)
            if after is not None:
                # Events sharing a time are told apart by their unique key, so none is skipped
                # or repeated; the first condition lets the customer-time index start there.
                query = query.where(
                    touchpoint.occurred_at <= after.occurred_at,
                    or_(
                        touchpoint.occurred_at < after.occurred_at,
                        tuple_(touchpoint.message_id, touchpoint.source_id)
                        > tuple_(after.message_id, after.source_id),
                    ),
                )
            rows = (await connection.execute(query)).all()
        page = rows[:limit]
        if len(rows) == len(page):
            return TimelinePage([row.payload for row in page], next=None)
        last = page[-1]
        return TimelinePage(
            [row.payload for row in page],
            next=TimelinePosition(last.occurred_at, last.message_id, last.source_id),
        )

    async def export(self, customer_id: str) -> dict[str, Any] | None:
        """Everything held on the customer."""
        async with self._engine.connect() as connection:
            resolved = await self.resolve(connection, customer_id)
            snapshot = await connection.scalar(
                select(customers.c.snapshot).where(customers.c.customer_id == resolved)
            )
            if snapshot is None:
                return None
            held_identities = (
                await connection.execute(
                    select(identities.c.kind, identities.c.value)
                    .where(identities.c.customer_id == resolved)
                    .order_by(identities.c.kind, identities.c.value)
                )
            ).all()
            events = (
                await connection.scalars(
                    select(touchpoints.c.payload)
                    .where(touchpoints.c.customer_id == resolved)
                    .order_by(touchpoints.c.occurred_at, touchpoints.c.message_id)
                )
            ).all()
        return {
            "customer_id": resolved,
            "exported_at": datetime.now(UTC).isoformat(),
            "profile": snapshot,
            "identities": [{"kind": row.kind, "value": row.value} for row in held_identities],
            "touchpoints": list(events),
        }

    async def erase(self, customer_id: str) -> Erasure | None:
        """Forget the customer everywhere this service holds them, and tell the others."""
        held: list[Identity] = []
        while True:
            erasure = await self._erase(customer_id, held)
            if isinstance(erasure, Erasure) or erasure is None:
                return erasure
            # Identities were linked to the customer meanwhile: redo with all of them locked in
            # one sorted pass (never a late lock that waits, so never a deadlock with the fold).
            held = erasure

    async def _erase(
        self, customer_id: str, known: list[Identity]
    ) -> Erasure | list[Identity] | None:
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            resolved = await self.resolve(connection, customer_id)
            await lock_identities(connection, known)
            held = await self._identities_of(connection, resolved)
            if not set(held) <= set(known):
                return sorted(set(held) | set(known))
            exists = await connection.scalar(
                select(customers.c.customer_id)
                .where(customers.c.customer_id == resolved)
                .with_for_update()
            )
            if exists is None:
                return None
            absorbed = list(
                await connection.scalars(
                    select(merged_customers.c.absorbed_id).where(
                        merged_customers.c.survivor_id == resolved
                    )
                )
            )
            if held:
                ledger = insert(erasures).values(
                    [{"identity_hash": identity_hash(i), "erased_at": now} for i in held]
                )
                await connection.execute(
                    ledger.on_conflict_do_update(
                        index_elements=["identity_hash"], set_={"erased_at": now}
                    )
                )
            deleted_events = await connection.execute(
                delete(touchpoints).where(touchpoints.c.customer_id == resolved)
            )
            await connection.execute(delete(identities).where(identities.c.customer_id == resolved))
            await connection.execute(
                delete(merged_customers).where(
                    (merged_customers.c.survivor_id == resolved)
                    | (merged_customers.c.absorbed_id == resolved)
                )
            )
            await connection.execute(
                update(customers)
                .where(customers.c.referred_by == resolved)
                .values(referred_by=None)
            )
            await connection.execute(delete(customers).where(customers.c.customer_id == resolved))
            await self._announce_erasure(connection, resolved, absorbed, held, now)
        return Erasure(resolved, len(held), deleted_events.rowcount)

    async def _identities_of(self, connection: AsyncConnection, customer_id: str) -> list[Identity]:
        rows = await connection.execute(
            select(identities.c.kind, identities.c.value).where(
                identities.c.customer_id == customer_id
            )
        )
        return [(row.kind, row.value) for row in rows]

    async def _announce_erasure(
        self,
        connection: AsyncConnection,
        customer_id: str,
        absorbed: list[str],
        held: list[Identity],
        now: datetime,
    ) -> None:
        keys = [customer_id.encode(), *(a.encode() for a in absorbed)]
        # Unpublished messages about the customer carry personal data: they go too, including
        # dead letters, which are keyed by the userId or anonymousId they arrived with.
        await self._outbox.discard(connection, keys + [value.encode() for _kind, value in held])
        await self._outbox.enqueue(connection, erasure_announcements(customer_id, absorbed, now))

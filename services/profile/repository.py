"""Profile reads, export and erasure (the read side of the profile schema)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.topics import LIFECYCLE, PROFILES
from services.profile.domain.identity import Identity, identity_hash
from services.profile.domain.signals import customer_erased
from services.profile.locks import lock_identities
from services.profile.tables import (
    customers,
    erasures,
    identities,
    merged_customers,
    outbox,
    touchpoints,
)


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
class Erasure:
    customer_id: str
    identities: int
    touchpoints: int


class ProfileRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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
        self, customer_id: str, *, limit: int, before: datetime | None
    ) -> list[dict[str, Any]] | None:
        """The customer's most recent touchpoints, newest first; None if there is no customer."""
        async with self._engine.connect() as connection:
            resolved = await self.resolve(connection, customer_id)
            exists = await connection.scalar(
                select(func.count()).where(customers.c.customer_id == resolved)
            )
            if not exists:
                return None
            query = (
                select(touchpoints.c.payload)
                .where(touchpoints.c.customer_id == resolved)
                .order_by(touchpoints.c.occurred_at.desc(), touchpoints.c.message_id)
                .limit(limit)
            )
            if before is not None:
                query = query.where(touchpoints.c.occurred_at < before)
            return list((await connection.scalars(query)).all())

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
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            resolved = await self.resolve(connection, customer_id)
            # Identity locks first, then the row, in the fold's order, so the two never
            # deadlock; identities linked meanwhile are locked on the second pass.
            held: list[Identity] = []
            while True:
                found = await self._identities_of(connection, resolved)
                if set(found) <= set(held):
                    break
                held = sorted(set(held) | set(found))
                await lock_identities(connection, held)
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
        identity_keys = [value.encode() for _kind, value in held]
        await connection.execute(delete(outbox).where(outbox.c.key.in_(keys + identity_keys)))
        erased = customer_erased(customer_id, now)
        await connection.execute(
            outbox.insert().values(
                [{"topic": PROFILES, "key": key, "value": None} for key in keys]
                + [
                    {
                        "topic": LIFECYCLE,
                        "key": customer_id.encode(),
                        "value": erased.model_dump_json().encode(),
                    }
                ]
            )
        )

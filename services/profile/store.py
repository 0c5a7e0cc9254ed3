"""The fold's storage in the profile schema: every statement the use case needs, by name.

Each statement has one fixed text whatever the batch size: rows travel as arrays (unnest), so the
driver prepares each statement once instead of compiling one per batch with a parameter per
value. JSON documents (states, snapshots, payloads) are json columns, stored as the text given:
PostgreSQL never parses them into jsonb, and states are read back as text and parsed with
orjson. Tables: see tables.py.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import ProfileState
from services.profile.domain.batch import Customer
from services.profile.domain.identity import Identity, advisory_lock_key, identity_hash
from services.profile.ports import CustomerRow, EventKey, ReferralFigures

_LOCK_IDENTITIES = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")
_TRY_LOCK_IDENTITIES = text(
    "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
)
_ERASED = text(
    "SELECT identity_hash, erased_at FROM profile.erasures "
    "WHERE identity_hash = ANY(CAST(:hashes AS text[]))"
)
_OWNERS = text(
    "SELECT i.kind, i.value, i.customer_id FROM profile.identities AS i "
    "JOIN unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS w(kind, value) "
    "ON i.kind = w.kind AND i.value = w.value"
)
_USER_IDS = text(
    "SELECT customer_id, user_id FROM profile.customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_REFERRER_USER_IDS = text(
    "SELECT DISTINCT referrer_user_id FROM profile.customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) AND referrer_user_id IS NOT NULL"
)
_LOCK_CUSTOMERS = text(
    "SELECT customer_id, user_id, CAST(state AS text) AS state, revision "
    "FROM profile.customers WHERE customer_id = ANY(CAST(:ids AS text[])) "
    "ORDER BY customer_id FOR UPDATE"
)
_ANY_ABSORBED = text(
    "SELECT count(*) FROM profile.merged_customers WHERE absorbed_id = ANY(CAST(:ids AS text[]))"
)
# Every absorbed id with its survivor, as rows m(absorbed, survivor).
_MAPPING = "unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor)"
# (S608: the statements are constants; only :absorbed and :survivors are parameters.)
_REPOINT_ABSORBED = (
    text(
        f"UPDATE profile.identities AS t SET customer_id = m.survivor FROM {_MAPPING} "  # noqa: S608
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        f"UPDATE profile.touchpoints AS t SET customer_id = m.survivor FROM {_MAPPING} "  # noqa: S608
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        f"UPDATE profile.merged_customers AS t SET survivor_id = m.survivor FROM {_MAPPING} "  # noqa: S608
        "WHERE t.survivor_id = m.absorbed"
    ),
    text(
        f"UPDATE profile.customers AS t SET referred_by = m.survivor FROM {_MAPPING} "  # noqa: S608
        "WHERE t.referred_by = m.absorbed"
    ),
    text(
        f"DELETE FROM profile.customers AS t USING {_MAPPING} "  # noqa: S608
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        "INSERT INTO profile.merged_customers (absorbed_id, survivor_id) "  # noqa: S608
        f"SELECT m.absorbed, m.survivor FROM {_MAPPING} "
        "ON CONFLICT (absorbed_id) DO UPDATE SET survivor_id = excluded.survivor_id"
    ),
)
_ADD_TOUCHPOINTS = text(
    "INSERT INTO profile.touchpoints "
    "(source_id, message_id, customer_id, occurred_at, received_at, type, name, payload) "
    "SELECT s, m, c, o, r, t, n, CAST(p AS json) FROM unnest("
    "CAST(:source_ids AS text[]), CAST(:message_ids AS text[]), CAST(:customer_ids AS text[]), "
    "CAST(:occurred AS timestamptz[]), CAST(:received AS timestamptz[]), "
    "CAST(:types AS text[]), CAST(:names AS text[]), CAST(:payloads AS text[])"
    ") AS e(s, m, c, o, r, t, n, p) "
    "ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id"
)
_LINK_IDENTITIES = text(
    "INSERT INTO profile.identities (kind, value, customer_id) "
    "SELECT k, v, c FROM unnest("
    "CAST(:kinds AS text[]), CAST(:values AS text[]), CAST(:customer_ids AS text[])"
    ") AS l(k, v, c) "
    "ON CONFLICT (kind, value) DO UPDATE SET customer_id = excluded.customer_id"
)
# New rows get an empty snapshot; _SAVE_SNAPSHOTS fills it once referrals are known.
_SAVE_CUSTOMERS = text(
    "INSERT INTO profile.customers (customer_id, user_id, email, state, snapshot, revision, "
    "net_revenue, currency, orders_count, referred_by, referrer_user_id, updated_at) "
    "SELECT c, u, e, CAST(s AS json), CAST('{}' AS json), r, n, cur, o, b, ru, "
    "CAST(:now AS timestamptz) FROM unnest("
    "CAST(:ids AS text[]), CAST(:user_ids AS text[]), CAST(:emails AS text[]), "
    "CAST(:states AS text[]), CAST(:revisions AS bigint[]), CAST(:net_revenues AS numeric[]), "
    "CAST(:currencies AS text[]), CAST(:orders_counts AS integer[]), "
    "CAST(:referred_by AS text[]), CAST(:referrer_user_ids AS text[])"
    ") AS f(c, u, e, s, r, n, cur, o, b, ru) "
    "ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id, "
    "email = excluded.email, state = excluded.state, revision = excluded.revision, "
    "net_revenue = excluded.net_revenue, currency = excluded.currency, "
    "orders_count = excluded.orders_count, referred_by = excluded.referred_by, "
    "referrer_user_id = excluded.referrer_user_id, updated_at = excluded.updated_at"
)
# Per currency, never across currencies: EUR and USD do not add up.
_REFERRAL_FIGURES = text(
    "SELECT referred_by, currency, count(*) AS customers, sum(net_revenue) AS net_revenue "
    "FROM profile.customers WHERE referred_by = ANY(CAST(:ids AS text[])) "
    "GROUP BY referred_by, currency"
)
_MERGED_IDS = text(
    "SELECT survivor_id, absorbed_id FROM profile.merged_customers "
    "WHERE survivor_id = ANY(CAST(:ids AS text[])) ORDER BY absorbed_id"
)
_SAVE_SNAPSHOTS = text(
    "UPDATE profile.customers AS t SET snapshot = CAST(u.snapshot AS json), "
    "revision = u.revision FROM unnest("
    "CAST(:ids AS text[]), CAST(:snapshots AS text[]), CAST(:revisions AS bigint[])"
    ") AS u(customer_id, snapshot, revision) WHERE t.customer_id = u.customer_id"
)


def _json_in(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # integers beyond 64 bits, which orjson refuses
        return json.loads(raw)


def _json_out(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(value)


def _lock_keys(identities: Iterable[Identity]) -> list[int]:
    return sorted({advisory_lock_key(identity) for identity in identities})


async def lock_identities(connection: AsyncConnection, identities: Iterable[Identity]) -> None:
    """Transaction-scoped locks on identities, always taken in the same (sorted) order; the
    fold and erasure share them, so neither sees the other half done."""
    keys = _lock_keys(identities)
    if keys:
        await connection.execute(_LOCK_IDENTITIES, {"keys": keys})


async def try_lock_identities(connection: AsyncConnection, identities: Iterable[Identity]) -> bool:
    """Like lock_identities, but only if every lock is free at once (never waits)."""
    keys = _lock_keys(identities)
    if not keys:
        return True
    return bool(await connection.scalar(_TRY_LOCK_IDENTITIES, {"keys": keys}))


class PostgresProfileStore:
    """The ProfileStore of services/profile/ports.py, on one connection in a transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def lock_identities(self, identities: Iterable[Identity]) -> None:
        await lock_identities(self._connection, identities)

    async def try_lock_identities(self, identities: Iterable[Identity]) -> bool:
        return await try_lock_identities(self._connection, identities)

    async def erased_at(self, identities: Iterable[Identity]) -> dict[Identity, datetime]:
        hashes = {identity_hash(identity): identity for identity in identities}
        if not hashes:
            return {}
        rows = await self._connection.execute(_ERASED, {"hashes": list(hashes)})
        return {hashes[row.identity_hash]: row.erased_at for row in rows}

    async def owners(self, identities: Iterable[Identity]) -> dict[Identity, str]:
        wanted = sorted(set(identities))
        if not wanted:
            return {}
        rows = await self._connection.execute(
            _OWNERS, {"kinds": [kind for kind, _ in wanted], "values": [v for _, v in wanted]}
        )
        return {(row.kind, row.value): row.customer_id for row in rows}

    async def user_ids(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self._connection.execute(_USER_IDS, {"ids": ids})
        return {row.customer_id: row.user_id for row in rows}

    async def referrer_user_ids(self, customer_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(customer_ids))
        if not ids:
            return set()
        return set(await self._connection.scalars(_REFERRER_USER_IDS, {"ids": ids}))

    async def lock_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self._connection.execute(_LOCK_CUSTOMERS, {"ids": ids})
        return {
            row.customer_id: Customer.stored(
                row.customer_id,
                row.user_id,
                ProfileState.from_json(_json_in(row.state)),
                row.revision,
            )
            for row in rows
        }

    async def any_absorbed(self, customer_ids: Iterable[str]) -> bool:
        ids = sorted(set(customer_ids))
        return bool(ids) and bool(await self._connection.scalar(_ANY_ABSORBED, {"ids": ids}))

    async def repoint_absorbed(self, moved: Mapping[str, str]) -> None:
        mapping = {"absorbed": list(moved), "survivors": list(moved.values())}
        for statement in _REPOINT_ABSORBED:
            await self._connection.execute(statement, mapping)

    async def add_touchpoints(self, events: Sequence[tuple[Touchpoint, str]]) -> set[EventKey]:
        if not events:
            return set()
        result = await self._connection.execute(
            _ADD_TOUCHPOINTS,
            {
                "source_ids": [e.source_id for e, _ in events],
                "message_ids": [e.message_id for e, _ in events],
                "customer_ids": [customer_id for _, customer_id in events],
                "occurred": [e.timestamp for e, _ in events],
                "received": [e.received_at for e, _ in events],
                "types": [e.event.type for e, _ in events],
                "names": [
                    getattr(e.event, "event", None) or getattr(e.event, "name", None)
                    for e, _ in events
                ],
                # The touchpoint's own JSON, parsed by PostgreSQL: no decode and re-encode here.
                "payloads": [e.to_json().decode() for e, _ in events],
            },
        )
        return {(row.source_id, row.message_id) for row in result}

    async def link_identities(self, links: Mapping[Identity, str]) -> None:
        if not links:
            return
        ordered = sorted(links.items())
        await self._connection.execute(
            _LINK_IDENTITIES,
            {
                "kinds": [kind for (kind, _), _ in ordered],
                "values": [value for (_, value), _ in ordered],
                "customer_ids": [customer_id for _, customer_id in ordered],
            },
        )

    async def save_customers(self, rows: Sequence[CustomerRow], now: datetime) -> None:
        if not rows:
            return
        await self._connection.execute(
            _SAVE_CUSTOMERS,
            {
                "ids": [r.customer.customer_id for r in rows],
                "user_ids": [r.customer.user_id for r in rows],
                "emails": [r.email for r in rows],
                "states": [_json_out(r.customer.state.to_json()) for r in rows],
                "revisions": [r.customer.revision for r in rows],
                "net_revenues": [r.net_revenue for r in rows],
                "currencies": [r.currency for r in rows],
                "orders_counts": [r.orders_count for r in rows],
                "referred_by": [r.referred_by for r in rows],
                "referrer_user_ids": [r.referrer_user_id for r in rows],
                "now": now,
            },
        )

    async def referral_figures(self, customer_ids: Iterable[str]) -> dict[str, ReferralFigures]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        counts: dict[str, int] = {}
        revenue: dict[str, dict[str, Decimal]] = {}
        for row in await self._connection.execute(_REFERRAL_FIGURES, {"ids": ids}):
            counts[row.referred_by] = counts.get(row.referred_by, 0) + int(row.customers)
            by_currency = revenue.setdefault(row.referred_by, {})
            if row.currency is not None:
                by_currency[row.currency] = Decimal(row.net_revenue)
        return {cid: ReferralFigures(counts[cid], revenue[cid]) for cid in counts}

    async def merged_ids(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        merged: dict[str, list[str]] = {}
        for row in await self._connection.execute(_MERGED_IDS, {"ids": ids}):
            merged.setdefault(row.survivor_id, []).append(row.absorbed_id)
        return merged

    async def save_snapshots(self, snapshots: Mapping[str, tuple[str, int]]) -> None:
        if not snapshots:
            return
        await self._connection.execute(
            _SAVE_SNAPSHOTS,
            {
                "ids": list(snapshots),
                "snapshots": [snapshot for snapshot, _ in snapshots.values()],
                "revisions": [revision for _, revision in snapshots.values()],
            },
        )

"""The profile consumer's unit of work: one batch of touchpoints, one Postgres transaction.

In that transaction: identities are resolved (merging profiles found to be one), new events are
stored and folded, the new snapshots and lifecycle signals are written to the outbox, and the
consumer's offsets are recorded. Either all of it commits or none of it does, so a crash at any
point means the batch is redone from the recorded offsets, and redone it changes nothing:
touchpoints are unique per (source, messageId) and only newly stored ones are folded.
"""

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.topics import LIFECYCLE, PROFILES
from schemas.topics.dlq_v1 import DeadLetter
from schemas.topics.lifecycle_v1 import LifecycleEvent
from schemas.topics.profiles_v1 import ProfileSnapshot, Referrals
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import LoyaltyRule, ProfileState, fold, lifecycle_signals, merge
from services.profile.domain import to_snapshot as snapshot_of
from services.profile.domain.identity import (
    Identity,
    Links,
    Resolution,
    customer_id_for,
    event_key,
    identity_hash,
    resolve,
)
from services.profile.domain.signals import profiles_merged
from services.profile.locks import lock_identities
from services.profile.tables import (
    consumer_offsets,
)
from services.runtime.failures import RetryableError

log = logging.getLogger(__name__)

# The batch's bulk statements, one round trip each whatever the batch size. Rows travel as
# arrays (unnest), so each statement has one fixed text that the driver prepares once, instead
# of a statement compiled per batch with a parameter per value. (Tables: see tables.py.)
_ERASED = text(
    "SELECT identity_hash, erased_at FROM profile.erasures "
    "WHERE identity_hash = ANY(CAST(:hashes AS text[]))"
)
_KNOWN_IDENTITIES = text(
    "SELECT i.kind, i.value, i.customer_id FROM profile.identities AS i "
    "JOIN unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS w(kind, value) "
    "ON i.kind = w.kind AND i.value = w.value"
)
_USER_IDS = text(
    "SELECT customer_id, user_id FROM profile.customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
# The state as text, parsed here with orjson (the driver's JSONB codec uses the slower json).
_LOCK_CUSTOMERS = text(
    "SELECT customer_id, user_id, CAST(state AS text) AS state, revision "
    "FROM profile.customers WHERE customer_id = ANY(CAST(:ids AS text[])) "
    "ORDER BY customer_id FOR UPDATE"
)
_ANY_ABSORBED = text(
    "SELECT count(*) FROM profile.merged_customers WHERE absorbed_id = ANY(CAST(:ids AS text[]))"
)
_ABSORB = (
    text(
        "UPDATE profile.identities AS t SET customer_id = m.survivor "
        "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        "UPDATE profile.touchpoints AS t SET customer_id = m.survivor "
        "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        "UPDATE profile.merged_customers AS t SET survivor_id = m.survivor "
        "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "WHERE t.survivor_id = m.absorbed"
    ),
    text(
        "UPDATE profile.customers AS t SET referred_by = m.survivor "
        "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "WHERE t.referred_by = m.absorbed"
    ),
    text(
        "DELETE FROM profile.customers AS t "
        "USING unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "WHERE t.customer_id = m.absorbed"
    ),
    text(
        "INSERT INTO profile.merged_customers (absorbed_id, survivor_id) "
        "SELECT m.absorbed, m.survivor "
        "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) m(absorbed, survivor) "
        "ON CONFLICT (absorbed_id) DO UPDATE SET survivor_id = excluded.survivor_id"
    ),
)
_STORE_TOUCHPOINTS = text(
    "INSERT INTO profile.touchpoints "
    "(source_id, message_id, customer_id, occurred_at, received_at, type, name, payload) "
    "SELECT s, m, c, o, r, t, n, CAST(p AS jsonb) FROM unnest("
    "CAST(:source_ids AS text[]), CAST(:message_ids AS text[]), CAST(:customer_ids AS text[]), "
    "CAST(:occurred AS timestamptz[]), CAST(:received AS timestamptz[]), "
    "CAST(:types AS text[]), CAST(:names AS text[]), CAST(:payloads AS text[])"
    ") AS e(s, m, c, o, r, t, n, p) "
    "ON CONFLICT (source_id, message_id) DO NOTHING RETURNING source_id, message_id"
)
_SAVE_IDENTITIES = text(
    "INSERT INTO profile.identities (kind, value, customer_id) "
    "SELECT k, v, c FROM unnest("
    "CAST(:kinds AS text[]), CAST(:values AS text[]), CAST(:customer_ids AS text[])"
    ") AS l(k, v, c) "
    "ON CONFLICT (kind, value) DO UPDATE SET customer_id = excluded.customer_id"
)
# New rows get an empty snapshot; _SAVE_SNAPSHOTS fills it once referrals are known.
_SAVE_FIGURES = text(
    "INSERT INTO profile.customers (customer_id, user_id, email, state, snapshot, revision, "
    "net_revenue, orders_count, referred_by, updated_at) "
    "SELECT c, u, e, CAST(s AS jsonb), CAST('{}' AS jsonb), r, n, o, b, CAST(:now AS timestamptz) "
    "FROM unnest("
    "CAST(:ids AS text[]), CAST(:user_ids AS text[]), CAST(:emails AS text[]), "
    "CAST(:states AS text[]), CAST(:revisions AS bigint[]), CAST(:net_revenues AS numeric[]), "
    "CAST(:orders_counts AS integer[]), CAST(:referred_by AS text[])"
    ") AS f(c, u, e, s, r, n, o, b) "
    "ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id, "
    "email = excluded.email, state = excluded.state, revision = excluded.revision, "
    "net_revenue = excluded.net_revenue, orders_count = excluded.orders_count, "
    "referred_by = excluded.referred_by, updated_at = excluded.updated_at"
)
# Referrers are named by userId; the identity table knows which customer that is now
# (after merges), which the id derived from the userId alone would not.
_REFERRER_IDS = text(
    "SELECT value, customer_id FROM profile.identities "
    "WHERE kind = 'user' AND value = ANY(CAST(:values AS text[]))"
)
_REFERRAL_FIGURES = text(
    "SELECT referred_by, count(*), sum(net_revenue) FROM profile.customers "
    "WHERE referred_by = ANY(CAST(:ids AS text[])) GROUP BY referred_by"
)
_MERGED_IDS = text(
    "SELECT survivor_id, absorbed_id FROM profile.merged_customers "
    "WHERE survivor_id = ANY(CAST(:ids AS text[])) ORDER BY absorbed_id"
)
_SAVE_SNAPSHOTS = text(
    "UPDATE profile.customers AS t SET snapshot = CAST(u.snapshot AS jsonb), "
    "revision = u.revision FROM unnest("
    "CAST(:ids AS text[]), CAST(:snapshots AS text[]), CAST(:revisions AS bigint[])"
    ") AS u(customer_id, snapshot, revision) WHERE t.customer_id = u.customer_id"
)
# Rows are inserted in array order, so outbox ids (the relay's publishing order) follow it.
_ENQUEUE = text(
    "INSERT INTO profile.outbox (topic, key, value) "
    "SELECT t, k, v FROM unnest("
    "CAST(:topics AS text[]), CAST(:keys AS bytea[]), CAST(:values AS bytea[])"
    ") WITH ORDINALITY AS o(t, k, v, n) ORDER BY n"
)


async def _enqueue(connection: AsyncConnection, messages: Sequence[dict[str, Any]]) -> None:
    """Add messages to the outbox, in order, in the caller's transaction."""
    if messages:
        await connection.execute(
            _ENQUEUE,
            {
                "topics": [m["topic"] for m in messages],
                "keys": [m["key"] for m in messages],
                "values": [m["value"] for m in messages],
            },
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


class ConcurrentMergeError(RetryableError):
    """The batch raced a merge on another partition; redoing it resolves identities afresh."""


# The customer id a referral names, given the referred customer's state.
ReferrerLookup = Callable[[ProfileState], str | None]


@dataclass(frozen=True)
class Delivered:
    """A decoded touchpoint and where it came from."""

    touchpoint: Touchpoint
    topic: str
    partition: int
    offset: int


@dataclass
class _Customer:
    customer_id: str
    user_id: str | None
    state: ProfileState
    revision: int
    exists: bool
    changed: bool = False
    before: ProfileState = field(default_factory=ProfileState)


def _key_bytes(letter: DeadLetter) -> bytes | None:
    """The dead letter keeps the original key (touchpoint keys are text)."""
    return letter.key.encode() if letter.key is not None else None


class ProfileFolder:
    def __init__(
        self, engine: AsyncEngine, group_id: str, dead_letter_topic: str, loyalty: LoyaltyRule
    ) -> None:
        self._engine = engine
        self._group_id = group_id
        self._dead_letter_topic = dead_letter_topic
        self._loyalty = loyalty

    async def apply(
        self, delivered: Sequence[Delivered], dead_letters: Sequence[DeadLetter] = ()
    ) -> int:
        """Fold a batch and dead-letter its poison, atomically; returns outbox messages written.

        Dead letters go through the outbox too, so a poison record is never both skipped (its
        offset recorded) and lost (its dead letter unsent).
        """
        async with self._engine.begin() as connection:
            recorded = await self._recorded_offsets(connection)

            def fresh(topic: str, partition: int, offset: int) -> bool:
                return offset >= recorded.get((topic, partition), 0)

            letters = [
                {
                    "topic": self._dead_letter_topic,
                    "key": _key_bytes(letter),
                    "value": letter.model_dump_json().encode(),
                }
                for letter in dead_letters
                if fresh(letter.original_topic, letter.partition, letter.offset)
            ]
            await _enqueue(connection, letters)
            current = [d.touchpoint for d in delivered if fresh(d.topic, d.partition, d.offset)]
            written = await self._fold(connection, current) if current else 0
            positions = [(d.topic, d.partition, d.offset) for d in delivered]
            positions += [(x.original_topic, x.partition, x.offset) for x in dead_letters]
            await self._record_offsets(connection, positions)
        return written + len(letters)

    async def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Where this group's consumers resume: the offsets recorded with the effects."""
        async with self._engine.connect() as connection:
            return await self._recorded_offsets(connection)

    async def _recorded_offsets(self, connection: AsyncConnection) -> dict[tuple[str, int], int]:
        rows = await connection.execute(
            select(
                consumer_offsets.c.topic,
                consumer_offsets.c.partition,
                consumer_offsets.c.next_offset,
            ).where(consumer_offsets.c.group_id == self._group_id)
        )
        return {(row.topic, row.partition): row.next_offset for row in rows}

    async def _record_offsets(
        self, connection: AsyncConnection, positions: Sequence[tuple[str, int, int]]
    ) -> None:
        latest: dict[tuple[str, int], int] = {}
        for topic, partition, offset in positions:
            latest[(topic, partition)] = max(latest.get((topic, partition), 0), offset + 1)
        if not latest:
            return
        statement = insert(consumer_offsets).values(
            [
                {"group_id": self._group_id, "topic": t, "partition": p, "next_offset": o}
                for (t, p), o in sorted(latest.items())
            ]
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["group_id", "topic", "partition"],
                set_={
                    "next_offset": func.greatest(
                        consumer_offsets.c.next_offset, statement.excluded.next_offset
                    )
                },
            )
        )

    async def _not_erased(
        self, connection: AsyncConnection, events: list[Touchpoint]
    ) -> list[Touchpoint]:
        """Events of an erased customer received before the erasure are forgotten, not folded."""
        hashes = {
            identity_hash(identity): identity
            for event in events
            for identity in Links.of(event).identities()
        }
        if not hashes:
            return events
        rows = await connection.execute(_ERASED, {"hashes": list(hashes)})
        erased_at = {hashes[row.identity_hash]: row.erased_at for row in rows}
        if not erased_at:
            return events
        return [
            event
            for event in events
            if all(
                event.received_at > erased_at[identity]
                for identity in Links.of(event).identities()
                if identity in erased_at
            )
        ]

    async def _fold(self, connection: AsyncConnection, events: list[Touchpoint]) -> int:
        all_identities = sorted({i for e in events for i in Links.of(e).identities()})
        # Consumers of other partitions may see the same identities: take turns on them.
        await lock_identities(connection, all_identities)
        # Only under the locks: an erasure committed before them must be seen here, or its
        # customer would be folded back from events received before it.
        events = await self._not_erased(connection, events)
        if not events:
            return 0
        known = await self._known_identities(connection, all_identities)
        users_of = await self._user_ids(connection, set(known.values()))
        resolution = resolve(events, known, users_of)

        involved = sorted(
            {resolution.final(c) for c in resolution.target.values()} | set(resolution.absorbed)
        )
        loaded = await self._lock_customers(connection, involved, resolution.user_ids)
        survivors = await self._absorb(connection, resolution, loaded)

        new_events = await self._store_touchpoints(connection, events, resolution)
        by_customer: dict[str, list[Touchpoint]] = {}
        for event in new_events:
            by_customer.setdefault(
                resolution.final(resolution.target[event_key(event)]), []
            ).append(event)
        for customer_id, customer_events in by_customer.items():
            customer = survivors[customer_id]
            customer.state = fold(customer.state, customer_events)
            customer.changed = True
        await self._save_identities(connection, resolution)
        return await self._save_and_announce(connection, survivors, resolution)

    async def _known_identities(
        self, connection: AsyncConnection, wanted: list[Identity]
    ) -> dict[Identity, str]:
        if not wanted:
            return {}
        rows = await connection.execute(
            _KNOWN_IDENTITIES,
            {"kinds": [kind for kind, _ in wanted], "values": [value for _, value in wanted]},
        )
        return {(row.kind, row.value): row.customer_id for row in rows}

    async def _user_ids(self, connection: AsyncConnection, ids: set[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        rows = await connection.execute(_USER_IDS, {"ids": sorted(ids)})
        return {row.customer_id: row.user_id for row in rows}

    async def _lock_customers(
        self, connection: AsyncConnection, ids: list[str], user_ids: dict[str, str]
    ) -> dict[str, _Customer]:
        rows = await connection.execute(_LOCK_CUSTOMERS, {"ids": ids})
        loaded = {
            row.customer_id: _Customer(
                row.customer_id,
                row.user_id,
                ProfileState.from_json(_json_in(row.state)),
                row.revision,
                exists=True,
            )
            for row in rows
        }
        missing = [customer_id for customer_id in ids if customer_id not in loaded]
        if missing:
            gone = await connection.scalar(_ANY_ABSORBED, {"ids": missing})
            if gone:
                # Another consumer merged one of them away after we resolved identities.
                raise ConcurrentMergeError(f"customers merged meanwhile: {sorted(missing)}")
        for customer_id in missing:
            loaded[customer_id] = _Customer(
                customer_id, user_ids.get(customer_id), ProfileState(), 0, exists=False
            )
        for customer in loaded.values():
            customer.before = customer.state
        return loaded

    async def _absorb(
        self, connection: AsyncConnection, resolution: Resolution, loaded: dict[str, _Customer]
    ) -> dict[str, _Customer]:
        """Merge absorbed customers into their survivors; absorbed ids resolve to survivors."""
        survivors = {cid: c for cid, c in loaded.items() if cid not in resolution.absorbed}
        moved: dict[str, str] = {}  # absorbed id -> survivor id, for the rows to repoint
        for absorbed_id in sorted(resolution.absorbed):
            survivor = survivors[resolution.final(absorbed_id)]
            absorbed = loaded[absorbed_id]
            if not absorbed.exists:
                continue
            survivor.state = merge(survivor.state, absorbed.state)
            # What the absorbed customer already announced (orders, cart) stays announced.
            survivor.before = merge(survivor.before, absorbed.before)
            survivor.changed = True
            moved[absorbed_id] = survivor.customer_id
        if moved:
            # Survivors are final, never absorbed themselves, so one pass over all merges gives
            # what merging them one by one would.
            mapping = {"absorbed": list(moved), "survivors": list(moved.values())}
            for statement in _ABSORB:
                await connection.execute(statement, mapping)
        return survivors

    async def _store_touchpoints(
        self, connection: AsyncConnection, events: list[Touchpoint], resolution: Resolution
    ) -> list[Touchpoint]:
        """Insert the events; return those not seen before (the only ones to fold)."""
        unique = {event_key(e): e for e in events}
        stored = list(unique.values())
        result = await connection.execute(
            _STORE_TOUCHPOINTS,
            {
                "source_ids": [e.source_id for e in stored],
                "message_ids": [e.message_id for e in stored],
                "customer_ids": [resolution.final(resolution.target[key]) for key in unique],
                "occurred": [e.timestamp for e in stored],
                "received": [e.received_at for e in stored],
                "types": [e.event.type for e in stored],
                "names": [
                    getattr(e.event, "event", None) or getattr(e.event, "name", None)
                    for e in stored
                ],
                # The touchpoint's own JSON, parsed by PostgreSQL: no decode and re-encode here.
                "payloads": [e.to_json().decode() for e in stored],
            },
        )
        inserted = {(row.source_id, row.message_id) for row in result}
        return [unique[key] for key in unique if key in inserted]

    async def _save_identities(self, connection: AsyncConnection, resolution: Resolution) -> None:
        if not resolution.links:
            return
        links = sorted(resolution.links.items())
        await connection.execute(
            _SAVE_IDENTITIES,
            {
                "kinds": [kind for (kind, _), _ in links],
                "values": [value for (_, value), _ in links],
                "customer_ids": [resolution.final(customer_id) for _, customer_id in links],
            },
        )

    async def _save_and_announce(
        self, connection: AsyncConnection, survivors: dict[str, _Customer], resolution: Resolution
    ) -> int:
        now = datetime.now(UTC)
        changed = {c.customer_id: c for c in survivors.values() if c.changed}
        messages: list[dict[str, Any]] = []
        merged_into: dict[str, list[str]] = {}
        for absorbed_id in sorted(resolution.absorbed):
            merged_into.setdefault(resolution.final(absorbed_id), []).append(absorbed_id)
            # The absorbed id no longer has a profile of its own: compact it away.
            messages.append({"topic": PROFILES, "key": absorbed_id.encode(), "value": None})
        # Referrals made span customers: first the referred customers' revenue is saved, then
        # every customer whose referral figures may have moved gets a fresh snapshot. Each
        # customer's own part of it is built once; what spans customers is added last.
        referrer_of = await self._referrer_lookup(connection, list(changed.values()))
        own = {cid: self._own_snapshot(changed[cid], now, referrer_of) for cid in sorted(changed)}
        await self._save_figures(connection, [changed[c] for c in own], own, referrer_of, now)
        referrers = await self._referrers_of(connection, list(changed.values()), referrer_of)
        for referrer in referrers:
            if referrer.customer_id not in changed:
                changed[referrer.customer_id] = referrer
                own[referrer.customer_id] = self._own_snapshot(referrer, now, referrer_of)
        referrals = await self._referral_figures(connection, sorted(changed))
        merged_ids = await self._merged_ids(connection, sorted(changed))
        snapshots: dict[str, str] = {}
        for customer_id in sorted(changed):
            customer = changed[customer_id]
            customer.revision += 1
            count, revenue = referrals.get(customer_id, (0, Decimal(0)))
            snapshot = with_cross_customer_figures(
                own[customer_id],
                merged_customer_ids=merged_ids.get(customer_id, []),
                referred_customers_count=count,
                referred_revenue=revenue,
            )
            if customer.user_id:  # an identified customer's id derives from this userId
                snapshot = snapshot.model_copy(update={"user_id": customer.user_id})
            # One serialisation serves both the served snapshot and the profiles.v1 message.
            value = snapshot.model_dump_json()
            snapshots[customer_id] = value
            messages.append(
                {"topic": PROFILES, "key": customer_id.encode(), "value": value.encode()}
            )
            signals: list[LifecycleEvent] = list(
                lifecycle_signals(customer.before, customer.state, customer_id=customer_id, now=now)
            )
            if customer_id in merged_into:
                signals.append(profiles_merged(customer_id, merged_into[customer_id], now))
            messages += [
                {
                    "topic": LIFECYCLE,
                    "key": customer_id.encode(),
                    "value": signal.model_dump_json().encode(),
                }
                for signal in signals
            ]
        if snapshots:
            await connection.execute(
                _SAVE_SNAPSHOTS,
                {
                    "ids": list(snapshots),
                    "snapshots": list(snapshots.values()),
                    "revisions": [changed[c].revision for c in snapshots],
                },
            )
        await _enqueue(connection, messages)
        return len(messages)

    def _own_snapshot(
        self, customer: _Customer, now: datetime, referrer_of: ReferrerLookup
    ) -> ProfileSnapshot:
        """The customer's next snapshot, but for the figures that span customers."""
        return snapshot_of(
            customer.state,
            customer_id=customer.customer_id,
            revision=customer.revision + 1,
            updated_at=now,
            loyalty=self._loyalty,
            referred_by_customer_id=referrer_of(customer.state),
        )

    async def _referrer_lookup(
        self, connection: AsyncConnection, customers: list[_Customer]
    ) -> ReferrerLookup:
        """Which customer each referrer userId names now, for this batch's customers."""
        users = sorted(
            {
                state.referrer_user_id.value
                for c in customers
                for state in (c.state, c.before)
                if state.referrer_user_id is not None
            }
        )
        current: dict[str, str] = {}
        if users:
            rows = await connection.execute(_REFERRER_IDS, {"values": users})
            current = {row.value: row.customer_id for row in rows}

        def referrer_of(state: ProfileState) -> str | None:
            if state.referrer_user_id is None:
                return None
            user = state.referrer_user_id.value
            return current.get(user) or customer_id_for(("user", user))

        return referrer_of

    async def _save_figures(
        self,
        connection: AsyncConnection,
        changed: list[_Customer],
        own: dict[str, ProfileSnapshot],
        referrer_of: ReferrerLookup,
        now: datetime,
    ) -> None:
        """The customer rows with their state and the figures other rows aggregate over."""
        if not changed:
            return
        figures = [own[c.customer_id] for c in changed]
        await connection.execute(
            _SAVE_FIGURES,
            {
                "ids": [c.customer_id for c in changed],
                "user_ids": [c.user_id for c in changed],
                "emails": [f.email.lower() if f.email else None for f in figures],
                "states": [_json_out(c.state.to_json()) for c in changed],
                "revisions": [c.revision for c in changed],
                "net_revenues": [f.commerce.net_revenue for f in figures],
                "orders_counts": [f.commerce.orders_count for f in figures],
                "referred_by": [referrer_of(c.state) for c in changed],
                "now": now,
            },
        )

    async def _referrers_of(
        self, connection: AsyncConnection, referred: list[_Customer], referrer_of: ReferrerLookup
    ) -> list[_Customer]:
        """The existing customers who referred these ones (before or now), for a fresh snapshot."""
        ids = {referrer_of(s) for c in referred for s in (c.state, c.before)}
        ids = ids - {None} - {c.customer_id for c in referred}
        if not ids:
            return []
        rows = await connection.execute(_LOCK_CUSTOMERS, {"ids": sorted(i for i in ids if i)})
        found = []
        for row in rows:
            state = ProfileState.from_json(_json_in(row.state))
            found.append(
                _Customer(row.customer_id, row.user_id, state, row.revision, True, True, state)
            )
        return found

    async def _referral_figures(
        self, connection: AsyncConnection, ids: list[str]
    ) -> dict[str, tuple[int, Decimal]]:
        rows = await connection.execute(_REFERRAL_FIGURES, {"ids": ids})
        return {row[0]: (int(row[1]), Decimal(row[2] or 0)) for row in rows}

    async def _merged_ids(
        self, connection: AsyncConnection, ids: list[str]
    ) -> dict[str, list[str]]:
        if not ids:
            return {}
        rows = await connection.execute(_MERGED_IDS, {"ids": ids})
        merged: dict[str, list[str]] = {}
        for row in rows:
            merged.setdefault(row.survivor_id, []).append(row.absorbed_id)
        return merged


def with_cross_customer_figures(
    snapshot: ProfileSnapshot,
    *,
    merged_customer_ids: Iterable[str],
    referred_customers_count: int,
    referred_revenue: Decimal,
) -> ProfileSnapshot:
    """`snapshot` with what spans customers, as `to_snapshot` given them would have built it.

    Those figures are known only once the batch's own figures are saved; adding them to the
    snapshot already built saves building every snapshot twice.
    """
    return snapshot.model_copy(
        update={
            "merged_customer_ids": sorted(set(merged_customer_ids)),
            "referrals": Referrals(
                referred_customers_count=referred_customers_count,
                referred_revenue=referred_revenue,
            ),
        }
    )

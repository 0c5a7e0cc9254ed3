"""Scoring's use case: apply one batch of profiles.v1 and lifecycle.v1 records, in the caller's
transaction, and return what it announces.

- a profile snapshot replaces the stored one when its revision is higher; a profiles.v1
  tombstone ends the stored profile (and its scores: a scores.v1 tombstone, once); a snapshot
  after the tombstone is a new profile;
- order_completed adds the order to the ledger (once per customer and order id); the ledger is
  lifecycle.v1's to change: profiles_merged moves the absorbed customers' orders to the survivor
  and forgets the absorbed profiles, customer_erased forgets the erased customer;
- customer_erased is recorded with its time; whatever is dated at or before a customer's
  erasure is theirs and forgotten, even when it arrives late; later is a customer who came back
  (the rule: domain/erasure.py);
- every customer touched is scored again with the current model; scores.v1 is published only
  when the record changed (its computed_at aside), with the transitions it implies; each
  transition is also kept (scoring.transitions: the customer's history), moved to the survivor
  of a merge and forgotten with the customer.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from schemas.topics import LIFECYCLE, SCORES
from schemas.topics.lifecycle_v1 import (
    CustomerErased,
    LifecycleEvent,
    OrderCompleted,
    ProfilesMerged,
)
from services.runtime.messages import OutboxMessage
from services.scoring.domain.erasure import before_erasure, erasure_times
from services.scoring.domain.ledger import LedgerOrder, ledger_order
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.score import ScoringModel, score_customers
from services.scoring.domain.standing import StandingRules
from services.scoring.domain.transitions import Standing, Transition, kept, transitions


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """A profiles.v1 record: the snapshot, or None for a tombstone (the customer was erased)."""

    customer_id: str
    snapshot: ScoredProfile | None
    raw: bytes | None = None  # the record's JSON, stored as it came


Item = ProfileUpdate | LifecycleEvent


@dataclass(frozen=True, slots=True)
class StoredScores:
    revision: int
    record: dict[str, Any]  # the scores.v1 record as last published
    standing: Standing


class ScoringStore(Protocol):
    """What the use case needs from storage (PostgreSQL: store.py; tests: an in-memory one)."""

    async def lock_customers(self, customer_ids: Iterable[str]) -> None: ...
    async def save_profiles(self, updates: Sequence[ProfileUpdate]) -> set[str]:
        """Store the snapshots newer than the stored ones; returns those customers."""
        ...

    async def add_orders(self, orders: Sequence[tuple[str, LedgerOrder]]) -> None: ...
    async def move_orders(self, moved: Mapping[str, str]) -> None:
        """Give each absorbed customer's orders (absorbed -> survivor) to the survivor."""
        ...

    async def forget_orders(self, orders: Sequence[tuple[str, str]]) -> None:
        """Delete these orders (customer id, order id)."""
        ...

    async def move_clicks(self, moved: Mapping[str, str]) -> None:
        """Give each absorbed customer's email clicks to the survivor."""
        ...

    async def forget_clicks(self, erased_at: Mapping[str, datetime]) -> None:
        """Delete each customer's email clicks dated at or before their erasure."""
        ...

    async def forget_profiles(self, customer_ids: Iterable[str]) -> set[str]:
        """Delete the customers' profiles, scores and transitions; returns those that had
        scores."""
        ...

    async def record_transitions(self, changes: Sequence[Transition]) -> None:
        """Keep these transitions; one already kept (the same event id) stays as it is."""
        ...

    async def move_transitions(self, moved: Mapping[str, str]) -> None:
        """Give each absorbed customer's transitions (absorbed -> survivor) to the survivor."""
        ...

    async def forget_transitions(self, until: Mapping[str, datetime]) -> None:
        """Delete each customer's transitions at or before their time."""
        ...

    async def erasures(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of these customers was last erased, for those who were."""
        ...

    async def record_erasures(self, erased_at: Mapping[str, datetime]) -> None: ...
    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, ScoredProfile]: ...
    async def orders(self, customer_ids: Iterable[str]) -> dict[str, list[LedgerOrder]]: ...
    async def lock_scores(self, customer_ids: Iterable[str]) -> dict[str, StoredScores]: ...
    async def save_scores(self, scores: Sequence[tuple[str, int, str, Standing]]) -> None: ...
    async def latest_model_version(self) -> int: ...
    async def latest_model(self) -> ScoringModel | None: ...


@dataclass
class _Batch:
    """A batch's records by what they say, in the order they came."""

    snapshots: dict[str, ProfileUpdate] = field(default_factory=dict)  # the latest revision
    ended: set[str] = field(default_factory=set)  # profiles.v1 tombstones
    erasures: list[tuple[str, datetime]] = field(default_factory=list)  # customer_erased
    merged: dict[str, str] = field(default_factory=dict)  # absorbed -> survivor
    orders: list[tuple[str, LedgerOrder]] = field(default_factory=list)

    @classmethod
    def of(cls, items: Sequence[Item]) -> "_Batch":
        batch = cls()
        for item in items:
            if isinstance(item, ProfileUpdate):
                if item.snapshot is None:
                    batch.ended.add(item.customer_id)
                    # It ends the profile of the snapshots before it; one after it is a new one.
                    batch.snapshots.pop(item.customer_id, None)
                else:
                    known = batch.snapshots.get(item.customer_id)
                    if known is None or _revision(known) < item.snapshot.revision:
                        batch.snapshots[item.customer_id] = item
            elif isinstance(item, CustomerErased):
                batch.erasures.append((item.customer_id, item.occurred_at))
            elif isinstance(item, ProfilesMerged):
                for absorbed in item.absorbed_customer_ids:
                    batch.merged[absorbed] = item.customer_id
            elif isinstance(item, OrderCompleted):
                batch.orders.append((item.customer_id, ledger_order(item)))
        return batch


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "computed_at"}


class ScoreBatch:
    def __init__(self, rules: StandingRules, model: ScoringModel) -> None:
        self._rules = rules
        self.model = model  # replaced by a refit

    async def __call__(
        self, store: ScoringStore, items: Sequence[Item], now: datetime | None = None
    ) -> list[OutboxMessage]:
        now = now or datetime.now(UTC)
        await self._follow_refits(store)
        batch = _Batch.of(items)
        snapshots, merged = batch.snapshots, batch.merged
        erased = {customer_id for customer_id, _ in batch.erasures}
        dated = set(snapshots) | {c for c, _ in batch.orders} | erased
        # Two consumers (profiles.v1, lifecycle.v1) may touch one customer at once: take turns,
        # in one sorted order, before reading anything of theirs.
        await store.lock_customers(dated | batch.ended | set(merged) | set(merged.values()))
        erased_at = erasure_times(await store.erasures(dated), batch.erasures)
        await store.record_erasures({c: erased_at[c] for c in erased})
        # What is dated at or before a customer's erasure is theirs, even when it comes late.
        orders = [(c, o) for c, o in batch.orders if not before_erasure(o.at, erased_at.get(c))]
        updates = [
            u
            for c, u in snapshots.items()
            if u.snapshot is not None
            and c not in merged
            and not before_erasure(u.snapshot.updated_at, erased_at.get(c))
        ]
        await store.add_orders(orders)
        await store.move_orders(merged)
        await store.move_transitions(merged)
        await store.move_clicks(merged)
        ended = batch.ended | await self._forget_erased(store, erased, erased_at)
        had_scores = await store.forget_profiles(ended | set(merged))
        # A tombstone for each customer forgotten here that had scores (the profiles.v1
        # tombstone and customer_erased both say so; the second finds nothing left).
        messages = [
            OutboxMessage(SCORES, customer_id.encode(), None) for customer_id in sorted(had_scores)
        ]
        # After the forgetting: a snapshot after a tombstone in this batch is a new profile.
        written = await store.save_profiles(updates)
        # The snapshots this batch stored are the current ones: no need to read them back.
        fresh = {c: u.snapshot for c, u in snapshots.items() if c in written and u.snapshot}
        touched = {u.customer_id for u in updates} | {c for c, _ in orders} | erased
        touched |= set(merged.values())
        messages += await self.rescore(store, sorted(touched), now, fresh)
        return messages

    async def _forget_erased(
        self, store: ScoringStore, erased: set[str], erased_at: Mapping[str, datetime]
    ) -> set[str]:
        """customer_erased forgets what the customer did up to the erasure: their orders and email
        clicks, and
        their profile unless it is already a new one (they came back before this arrived).
        Returns the customers whose profile ends."""
        if not erased:
            return set()
        await store.forget_transitions({c: erased_at[c] for c in erased})
        await store.forget_clicks({c: erased_at[c] for c in erased})
        held = await store.orders(erased)
        await store.forget_orders(
            [
                (customer_id, order.order_id)
                for customer_id, orders in held.items()
                for order in orders
                if before_erasure(order.at, erased_at[customer_id])
            ]
        )
        profiles = await store.profiles(erased)
        return {c for c, p in profiles.items() if before_erasure(p.updated_at, erased_at[c])}

    async def _follow_refits(self, store: ScoringStore) -> None:
        """A refit on another replica made a newer model: score with it from now on."""
        if await store.latest_model_version() > self.model.version:
            latest = await store.latest_model()
            if latest is not None:
                self.model = latest

    async def rescore(
        self,
        store: ScoringStore,
        customer_ids: list[str],
        now: datetime,
        known: Mapping[str, ScoredProfile] | None = None,
    ) -> list[OutboxMessage]:
        if not customer_ids:
            return []
        known = known or {}
        profiles = {**await store.profiles(c for c in customer_ids if c not in known), **known}
        ledger = await store.orders(customer_ids)
        stored = await store.lock_scores(customer_ids)
        saved = []
        changes: list[Transition] = []
        messages: list[OutboxMessage] = []
        # Orders before the profile: scored when the profile comes.
        ready = [c for c in customer_ids if c in profiles]
        scored = score_customers(
            [(profiles[c], ledger.get(c, [])) for c in ready], self.model, self._rules, now
        )
        for customer_id, (scores, standing) in zip(ready, scored, strict=True):
            value = scores.model_dump_json()
            record = orjson.loads(value)
            before = stored.get(customer_id)
            if before is not None and _comparable(before.record) == _comparable(record):
                continue
            revision = 1 if before is None else before.revision + 1
            saved.append((customer_id, revision, value, standing))
            key = customer_id.encode()
            messages.append(OutboxMessage(SCORES, key, value.encode()))
            announced = transitions(
                customer_id,
                None if before is None else before.standing,
                standing,
                revision=revision,
                at=now,
            )
            messages += [
                OutboxMessage(LIFECYCLE, key, event.model_dump_json().encode())
                for event in announced
            ]
            changes += kept(announced)
        await store.save_scores(saved)
        await store.record_transitions(changes)
        return messages


def _revision(update: ProfileUpdate) -> int:
    return -1 if update.snapshot is None else update.snapshot.revision

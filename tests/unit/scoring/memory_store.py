"""An in-memory ScoringStore, so the scoring use case is tested in milliseconds."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson

from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.score import LedgerOrder, ScoringModel
from services.scoring.domain.transitions import Standing, Transition
from services.scoring.score_batch import ProfileUpdate, StoredScores


@dataclass
class MemoryScoringStore:
    profiles_by_id: dict[str, ScoredProfile] = field(default_factory=dict)
    orders_by_id: dict[str, dict[str, LedgerOrder]] = field(default_factory=dict)
    scores_by_id: dict[str, StoredScores] = field(default_factory=dict)
    erased_at: dict[str, datetime] = field(default_factory=dict)
    transitions_by_id: dict[str, Transition] = field(default_factory=dict)  # by event id
    clicks_by_id: dict[str, list[datetime]] = field(default_factory=dict)  # email clicks

    async def lock_customers(self, customer_ids: Iterable[str]) -> None:
        return None

    async def save_profiles(self, updates: Sequence[ProfileUpdate]) -> set[str]:
        written = set()
        for update in updates:
            snapshot = update.snapshot
            if snapshot is None:
                continue
            known = self.profiles_by_id.get(snapshot.customer_id)
            if known is None or known.revision < snapshot.revision:
                self.profiles_by_id[snapshot.customer_id] = snapshot
                written.add(snapshot.customer_id)
        return written

    async def add_orders(self, orders: Sequence[tuple[str, LedgerOrder]]) -> None:
        for customer_id, order in orders:
            self.orders_by_id.setdefault(customer_id, {}).setdefault(order.order_id, order)

    async def move_orders(self, moved: Mapping[str, str]) -> None:
        for absorbed, survivor in moved.items():
            for order_id, order in self.orders_by_id.pop(absorbed, {}).items():
                self.orders_by_id.setdefault(survivor, {}).setdefault(order_id, order)

    async def forget_orders(self, orders: Sequence[tuple[str, str]]) -> None:
        for customer_id, order_id in orders:
            held = self.orders_by_id.get(customer_id, {})
            held.pop(order_id, None)
            if not held:
                self.orders_by_id.pop(customer_id, None)

    async def move_clicks(self, moved: Mapping[str, str]) -> None:
        for absorbed, survivor in moved.items():
            self.clicks_by_id.setdefault(survivor, []).extend(self.clicks_by_id.pop(absorbed, []))

    async def forget_clicks(self, erased_at: Mapping[str, datetime]) -> None:
        for customer_id, at in erased_at.items():
            kept = [c for c in self.clicks_by_id.pop(customer_id, []) if c > at]
            if kept:
                self.clicks_by_id[customer_id] = kept

    async def forget_profiles(self, customer_ids: Iterable[str]) -> set[str]:
        ids = set(customer_ids)
        had = set()
        for customer_id in ids:
            self.profiles_by_id.pop(customer_id, None)
            if self.scores_by_id.pop(customer_id, None) is not None:
                had.add(customer_id)
        self._drop_transitions(lambda t: t.customer_id in ids)
        return had

    async def record_transitions(self, changes: Sequence[Transition]) -> None:
        for change in changes:
            self.transitions_by_id.setdefault(change.event_id, change)

    async def move_transitions(self, moved: Mapping[str, str]) -> None:
        for event_id, change in list(self.transitions_by_id.items()):
            if change.customer_id in moved:
                self.transitions_by_id[event_id] = replace(
                    change, customer_id=moved[change.customer_id]
                )

    async def forget_transitions(self, until: Mapping[str, datetime]) -> None:
        self._drop_transitions(lambda t: t.customer_id in until and t.at <= until[t.customer_id])

    def _drop_transitions(self, dropped: Callable[[Transition], bool]) -> None:
        self.transitions_by_id = {e: t for e, t in self.transitions_by_id.items() if not dropped(t)}

    def transitions_of(self, customer_id: str) -> list[Transition]:
        return sorted(
            (t for t in self.transitions_by_id.values() if t.customer_id == customer_id),
            key=lambda t: (t.at, t.event_id),
        )

    async def erasures(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        return {c: self.erased_at[c] for c in customer_ids if c in self.erased_at}

    async def record_erasures(self, erased_at: Mapping[str, datetime]) -> None:
        self.erased_at.update(erased_at)

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, ScoredProfile]:
        return {c: self.profiles_by_id[c] for c in customer_ids if c in self.profiles_by_id}

    async def orders(self, customer_ids: Iterable[str]) -> dict[str, list[LedgerOrder]]:
        return {
            c: sorted(self.orders_by_id[c].values(), key=lambda o: (o.at, o.order_id))
            for c in customer_ids
            if c in self.orders_by_id
        }

    async def lock_scores(self, customer_ids: Iterable[str]) -> dict[str, StoredScores]:
        return {c: self.scores_by_id[c] for c in customer_ids if c in self.scores_by_id}

    async def latest_model_version(self) -> int:
        return 0

    async def latest_model(self) -> ScoringModel | None:
        return None

    async def save_scores(self, scores: Sequence[tuple[str, int, str, Standing]]) -> None:
        for customer_id, revision, record, standing in scores:
            self.scores_by_id[customer_id] = StoredScores(revision, orjson.loads(record), standing)

"""An in-memory ProfileStore, so the fold use case is tested in milliseconds.

It keeps what the PostgreSQL store keeps, with the same semantics (unique events by source and
messageId, identities, merges, per-currency referral figures); states go through their JSON
form as they do in the database. Locks are free unless a test says an identity is busy.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import ProfileState
from services.profile.domain.batch import Customer
from services.profile.domain.identity import Identity, identity_hash
from services.profile.ports import CustomerRow, EventKey, ReferralFigures


@dataclass
class StoredCustomer:
    user_id: str | None
    state: dict[str, object]
    revision: int
    snapshot: str = "{}"
    email: str | None = None
    net_revenue: Decimal = Decimal(0)
    currency: str | None = None
    orders_count: int = 0
    referred_by: str | None = None
    referrer_user_id: str | None = None


@dataclass
class MemoryProfileStore:
    identities: dict[Identity, str] = field(default_factory=dict)
    customers: dict[str, StoredCustomer] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)  # absorbed -> survivor
    touchpoints: dict[EventKey, str] = field(default_factory=dict)  # -> customer id
    erasures: dict[str, datetime] = field(default_factory=dict)  # identity hash -> when
    busy: set[Identity] = field(default_factory=set)  # identities another consumer holds
    locked_first: list[set[Identity]] = field(default_factory=list)  # each blocking lock call

    async def lock_identities(self, identities: Iterable[Identity]) -> None:
        self.locked_first.append(set(identities))

    async def try_lock_identities(self, identities: Iterable[Identity]) -> bool:
        return not (set(identities) & self.busy)

    async def erased_at(self, identities: Iterable[Identity]) -> dict[Identity, datetime]:
        return {
            i: self.erasures[identity_hash(i)]
            for i in identities
            if identity_hash(i) in self.erasures
        }

    async def owners(self, identities: Iterable[Identity]) -> dict[Identity, str]:
        return {i: self.identities[i] for i in identities if i in self.identities}

    async def user_ids(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        return {c: self.customers[c].user_id for c in customer_ids if c in self.customers}

    async def referrer_user_ids(self, customer_ids: Iterable[str]) -> set[str]:
        found = {self.customers[c].referrer_user_id for c in customer_ids if c in self.customers}
        return {user for user in found if user is not None}

    async def lock_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        return {
            c: Customer.stored(
                c,
                self.customers[c].user_id,
                ProfileState.from_json(self.customers[c].state),
                self.customers[c].revision,
            )
            for c in sorted(set(customer_ids))
            if c in self.customers
        }

    async def any_absorbed(self, customer_ids: Iterable[str]) -> bool:
        return any(c in self.merged for c in customer_ids)

    async def repoint_absorbed(self, moved: Mapping[str, str]) -> None:
        def repoint(customer_id: str) -> str:
            return moved.get(customer_id, customer_id)

        self.identities = {i: repoint(c) for i, c in self.identities.items()}
        self.touchpoints = {k: repoint(c) for k, c in self.touchpoints.items()}
        self.merged = {a: repoint(s) for a, s in self.merged.items()}
        for row in self.customers.values():
            if row.referred_by is not None:
                row.referred_by = repoint(row.referred_by)
        for absorbed, survivor in moved.items():
            self.customers.pop(absorbed, None)
            self.merged[absorbed] = survivor

    async def add_touchpoints(self, events: Sequence[tuple[Touchpoint, str]]) -> set[EventKey]:
        new: set[EventKey] = set()
        for event, customer_id in events:
            key = (event.source_id, event.message_id)
            if key not in self.touchpoints:
                self.touchpoints[key] = customer_id
                new.add(key)
        return new

    async def link_identities(self, links: Mapping[Identity, str]) -> None:
        self.identities.update(links)

    async def save_customers(self, rows: Sequence[CustomerRow], now: datetime) -> None:
        for row in rows:
            customer = row.customer
            stored = self.customers.get(customer.customer_id)
            snapshot = stored.snapshot if stored else "{}"
            self.customers[customer.customer_id] = StoredCustomer(
                user_id=customer.user_id,
                state=customer.state.to_json(),
                revision=customer.revision,
                snapshot=snapshot,
                email=row.email,
                net_revenue=row.net_revenue,
                currency=row.currency,
                orders_count=row.orders_count,
                referred_by=row.referred_by,
                referrer_user_id=row.referrer_user_id,
            )

    async def referral_figures(self, customer_ids: Iterable[str]) -> dict[str, ReferralFigures]:
        wanted = set(customer_ids)
        counts: dict[str, int] = {}
        revenue: dict[str, dict[str, Decimal]] = {}
        for row in self.customers.values():
            if row.referred_by not in wanted:
                continue
            counts[row.referred_by] = counts.get(row.referred_by, 0) + 1
            by_currency = revenue.setdefault(row.referred_by, {})
            if row.currency is not None:
                by_currency[row.currency] = by_currency.get(row.currency, Decimal(0)) + (
                    row.net_revenue
                )
        return {c: ReferralFigures(counts[c], revenue[c]) for c in counts}

    async def merged_ids(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        wanted = set(customer_ids)
        out: dict[str, list[str]] = {}
        for absorbed, survivor in sorted(self.merged.items()):
            if survivor in wanted:
                out.setdefault(survivor, []).append(absorbed)
        return out

    async def save_snapshots(self, snapshots: Mapping[str, tuple[str, int]]) -> None:
        for customer_id, (snapshot, revision) in snapshots.items():
            self.customers[customer_id].snapshot = snapshot
            self.customers[customer_id].revision = revision

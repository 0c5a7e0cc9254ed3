"""What the fold use case needs from storage, as named operations (PostgreSQL: store.py; the unit
tests use an in-memory one). Every method runs in the batch's one transaction."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain.batch import Customer
from services.profile.domain.identity import Identity

EventKey = tuple[str, str]  # (source, messageId): what identifies an event everywhere


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer's state and the figures other rows aggregate over or search by."""

    customer: Customer
    email: str | None
    net_revenue: Decimal  # in `currency`, the customer's main currency
    currency: str | None
    orders_count: int
    referred_by: str | None  # the referrer's customer id
    referrer_user_id: str | None


@dataclass(frozen=True, slots=True)
class ReferralFigures:
    customers: int
    net_revenue_by_currency: Mapping[str, Decimal]


class ProfileStore(Protocol):
    async def lock_identities(self, identities: Iterable[Identity]) -> None:
        """Take turns on identities with other consumers and erasure (blocking, sorted)."""

    async def try_lock_identities(self, identities: Iterable[Identity]) -> bool:
        """Take more identity locks only if free at once (so a late lock never waits)."""

    async def erased_at(self, identities: Iterable[Identity]) -> dict[Identity, datetime]:
        """When each of these identities was erased, for those that were."""

    async def owners(self, identities: Iterable[Identity]) -> dict[Identity, str]:
        """The customer holding each known identity."""

    async def user_ids(self, customer_ids: Iterable[str]) -> dict[str, str | None]:
        """The userId each existing customer's id derives from (None: anonymous)."""

    async def referrer_user_ids(self, customer_ids: Iterable[str]) -> set[str]:
        """The referrers (userIds) these customers name."""

    async def lock_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        """The existing ones among these customers, locked in one sorted pass."""

    async def any_absorbed(self, customer_ids: Iterable[str]) -> bool:
        """Whether any of these ids was merged into another customer."""

    async def repoint_absorbed(self, moved: Mapping[str, str]) -> None:
        """Move the rows of absorbed customers to their survivors; absorbed ids resolve."""

    async def add_touchpoints(self, events: Sequence[tuple[Touchpoint, str]]) -> set[EventKey]:
        """Store events with their customer; returns the keys not stored before."""

    async def link_identities(self, links: Mapping[Identity, str]) -> None:
        """Identity -> customer, for identities first seen or moved by a merge."""

    async def save_customers(self, rows: Sequence[CustomerRow], now: datetime) -> None:
        """Insert or update customers' state and figures (the snapshot follows separately)."""

    async def referral_figures(self, customer_ids: Iterable[str]) -> dict[str, ReferralFigures]:
        """For each referrer among these, what the customers it referred add up to."""

    async def merged_ids(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        """The customer ids merged into each of these."""

    async def save_snapshots(self, snapshots: Mapping[str, tuple[str, int]]) -> None:
        """Customer id -> (profiles.v1 JSON, revision) to serve."""

"""The rules of folding one batch that span customers: erasure, merges, referrals, announcements.

The fold use case (services/profile/fold_batch.py) asks its store for rows and hands them here;
everything decided about them is decided in this module, without I/O:

- events of an erased customer received before the erasure are forgotten (`not_erased`);
- when customers are found to be one, the survivor takes the absorbed states, and what the
  absorbed customers already announced stays announced (`absorb`);
- a referral names the referrer by userId; the customer it names is whoever holds that userId now,
  else the customer that userId would create (`ReferrerLookup`); a referrer's figures move with
  the customers it referred, so it gets a new snapshot when they change (`referrers_to_refresh`);
- an identified customer's snapshot shows the userId its id derives from (`snapshot_for`);
- what a batch announces: the new snapshot of every changed customer, a tombstone for every
  absorbed id, the lifecycle signals of each fold and one profiles_merged per survivor
  (`announcements`), and referral_converted to the referrer of a customer's first order;
  what an erasure announces (`erasure_announcements`).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.topics import LIFECYCLE, PROFILES
from schemas.topics.lifecycle_v1 import FirstOrder
from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain.identity import Identity, Links, Resolution, customer_id_for
from services.profile.domain.signals import (
    customer_erased,
    lifecycle_signals,
    profiles_merged,
    referral_converted,
)
from services.profile.domain.snapshot import LoyaltyRule, to_snapshot, with_cross_customer_figures
from services.profile.domain.state import ProfileState, merge
from services.runtime.messages import OutboxMessage


@dataclass
class Customer:
    """A customer row as the batch sees it: the state before the batch and as it becomes."""

    customer_id: str
    user_id: str | None  # the userId the id derives from, for identified customers
    state: ProfileState
    revision: int
    exists: bool
    changed: bool = False
    before: ProfileState = field(default_factory=ProfileState)

    @classmethod
    def stored(
        cls, customer_id: str, user_id: str | None, state: ProfileState, revision: int
    ) -> "Customer":
        return cls(customer_id, user_id, state, revision, exists=True, before=state)

    @classmethod
    def new(cls, customer_id: str, user_id: str | None) -> "Customer":
        empty = ProfileState()  # states are never changed in place: one serves as both
        return cls(customer_id, user_id, empty, 0, exists=False, before=empty)


def not_erased(
    events: Sequence[Touchpoint], erased_at: Mapping[Identity, datetime]
) -> list[Touchpoint]:
    """The events to fold: those of an erased identity received before its erasure are not."""
    if not erased_at:
        return list(events)
    return [
        event
        for event in events
        if all(
            event.received_at > erased_at[identity]
            for identity in Links.of(event).identities()
            if identity in erased_at
        )
    ]


def referrer_identities(events: Iterable[Touchpoint]) -> set[Identity]:
    """The referrers the events name (by userId), whose profiles the batch may change."""
    found: set[Identity] = set()
    for event in events:
        referrer = getattr(getattr(event.event, "properties", None), "referrer_id", None)
        if isinstance(referrer, str) and referrer:
            found.add(("user", referrer))
    return found


def referrer_of_state(state: ProfileState) -> Identity | None:
    return None if state.referrer_user_id is None else ("user", state.referrer_user_id.value)


@dataclass(frozen=True)
class ReferrerLookup:
    """Which customer a referral names: who holds the referrer's userId now, else the id that
    userId would create (a referrer not seen yet)."""

    current: Mapping[str, str]  # referrer userId -> customer id holding it

    def __call__(self, state: ProfileState) -> str | None:
        if state.referrer_user_id is None:
            return None
        user = state.referrer_user_id.value
        return self.current.get(user) or customer_id_for(("user", user))


def absorb(
    resolution: Resolution, loaded: Mapping[str, Customer]
) -> tuple[dict[str, Customer], dict[str, str]]:
    """Merge absorbed customers into their survivors.

    Returns the survivors by id and the absorbed ids that existed, mapped to their survivor
    (the rows to repoint). Survivors are final, never absorbed themselves, so one pass over all
    merges gives what merging them one by one would.
    """
    survivors = {cid: c for cid, c in loaded.items() if cid not in resolution.absorbed}
    moved: dict[str, str] = {}
    for absorbed_id in sorted(resolution.absorbed):
        absorbed = loaded.get(absorbed_id)
        if absorbed is None or not absorbed.exists:
            continue
        survivor = survivors[resolution.final(absorbed_id)]
        survivor.state = merge(survivor.state, absorbed.state)
        # What the absorbed customer already announced (orders, cart) stays announced.
        survivor.before = merge(survivor.before, absorbed.before)
        survivor.changed = True
        moved[absorbed_id] = survivor.customer_id
    return survivors, moved


def referrers_to_refresh(
    changed: Mapping[str, Customer], loaded: Mapping[str, Customer], referrer_of: ReferrerLookup
) -> list[Customer]:
    """The referrers, among the loaded customers, of a changed customer (before the batch or
    after it) that did not change themselves: their referral figures may have moved."""
    found: dict[str, Customer] = {}
    for customer in changed.values():
        for state in (customer.before, customer.state):
            referrer_id = referrer_of(state)
            referrer = loaded.get(referrer_id) if referrer_id else None
            if referrer is not None and referrer.customer_id not in changed:
                found[referrer.customer_id] = referrer
    return [found[customer_id] for customer_id in sorted(found)]


def own_snapshot(
    customer: Customer, *, now: datetime, loyalty: LoyaltyRule, referrer_of: ReferrerLookup
) -> ProfileSnapshot:
    """The customer's next snapshot, but for the figures that span customers."""
    snapshot = to_snapshot(
        customer.state,
        customer_id=customer.customer_id,
        revision=customer.revision + 1,
        updated_at=now,
        loyalty=loyalty,
        referred_by_customer_id=referrer_of(customer.state),
    )
    if customer.user_id:  # an identified customer's id derives from this userId
        snapshot = snapshot.model_copy(update={"user_id": customer.user_id})
    return snapshot


@dataclass(frozen=True)
class CrossCustomerFigures:
    merged_customer_ids: Sequence[str] = ()
    referred_customers_count: int = 0
    referred_revenue_by_currency: Mapping[str, Decimal] = field(default_factory=dict)


def announcements(
    changed: Sequence[Customer],
    own: Mapping[str, ProfileSnapshot],
    figures: Mapping[str, CrossCustomerFigures],
    resolution: Resolution,
    *,
    now: datetime,
) -> tuple[dict[str, str], list[OutboxMessage]]:
    """The final snapshots (JSON by customer id) and every message the batch announces.

    Bumps each changed customer's revision (the snapshot was built with the next one).
    """
    merged_into: dict[str, list[str]] = {}
    messages: list[OutboxMessage] = []
    for absorbed_id in sorted(resolution.absorbed):
        merged_into.setdefault(resolution.final(absorbed_id), []).append(absorbed_id)
        # The absorbed id no longer has a profile of its own: compact it away.
        messages.append(OutboxMessage(PROFILES, absorbed_id.encode(), None))
    snapshots: dict[str, str] = {}
    for customer in sorted(changed, key=lambda c: c.customer_id):
        customer_id = customer.customer_id
        customer.revision += 1
        extra = figures.get(customer_id, CrossCustomerFigures())
        snapshot = with_cross_customer_figures(
            own[customer_id],
            merged_customer_ids=extra.merged_customer_ids,
            referred_customers_count=extra.referred_customers_count,
            referred_revenue_by_currency=extra.referred_revenue_by_currency,
        )
        # One serialisation serves both the served snapshot and the profiles.v1 message.
        value = snapshot.model_dump_json()
        snapshots[customer_id] = value
        key = customer_id.encode()
        messages.append(OutboxMessage(PROFILES, key, value.encode()))
        signals = lifecycle_signals(
            customer.before, customer.state, customer_id=customer_id, now=now
        )
        if customer_id in merged_into:
            signals.append(profiles_merged(customer_id, merged_into[customer_id], now))
        messages += [
            OutboxMessage(LIFECYCLE, key, signal.model_dump_json().encode()) for signal in signals
        ]
        referrer = snapshot.acquisition.referred_by_customer_id
        for first in (s for s in signals if isinstance(s, FirstOrder)):
            if referrer is not None and referrer != customer_id:
                thanks = referral_converted(referrer, first)
                messages.append(
                    OutboxMessage(LIFECYCLE, referrer.encode(), thanks.model_dump_json().encode())
                )
    return snapshots, messages


def erasure_announcements(
    customer_id: str, absorbed: Sequence[str], now: datetime
) -> list[OutboxMessage]:
    """A tombstone for the customer and every id merged into it, and customer_erased."""
    keys = [customer_id.encode(), *(a.encode() for a in absorbed)]
    erased = customer_erased(customer_id, now)
    return [OutboxMessage(PROFILES, key, None) for key in keys] + [
        OutboxMessage(LIFECYCLE, customer_id.encode(), erased.model_dump_json().encode())
    ]

"""The profile's use case: fold one batch of touchpoints, in the caller's transaction.

The steps, with the store's named operations and the core's rules (domain/batch.py):
1. lock every identity the batch touches, the referrers it names among them, in one sorted
   pass; drop the events of erased customers;
2. resolve identities (which customer each event is for, which customers are one);
3. lock the involved customers and their referrers' rows in one sorted pass (so two consumers
   with crossing referrals and merges take locks in one global order and never deadlock);
4. merge absorbed customers into survivors; store the events, fold only those not seen before;
5. save the customers, then the figures that span customers, then the snapshots; return what
   the batch announces, for the outbox.

A referrer learnt only from stored state (not from the batch's events) is locked without
waiting; if that fails, the batch is redone with it among the first locks.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import LoyaltyRule, fold
from services.profile.domain.batch import (
    CrossCustomerFigures,
    Customer,
    ReferrerLookup,
    absorb,
    announcements,
    not_erased,
    own_snapshot,
    referrer_identities,
    referrer_of_state,
    referrers_to_refresh,
)
from services.profile.domain.identity import Identity, Links, Resolution, event_key, resolve
from services.profile.ports import CustomerRow, ProfileStore
from services.runtime.failures import RetryableError
from services.runtime.messages import OutboxMessage


class ConcurrentMergeError(RetryableError):
    """The batch raced a merge on another partition; redoing it resolves identities afresh."""


class LateLockError(RetryableError):
    """A referrer's identity was busy; the batch is redone taking it with the first locks."""


class FoldBatch:
    def __init__(self, loyalty: LoyaltyRule) -> None:
        self._loyalty = loyalty
        # Referrer identities the previous attempt could not lock late; the consumer loop redoes
        # the same batch next, which takes them with its first locks.
        self._lock_first: set[Identity] = set()

    async def __call__(
        self, store: ProfileStore, events: Sequence[Touchpoint], now: datetime | None = None
    ) -> list[OutboxMessage]:
        now = now or datetime.now(UTC)
        identities = {i for event in events for i in Links.of(event).identities()}
        referrers = referrer_identities(events)
        hinted, self._lock_first = self._lock_first, set()
        first_locks = identities | referrers | hinted
        await store.lock_identities(first_locks)
        # Only under the locks: an erasure committed before them must be seen here, or its
        # customer would be folded back from events received before it.
        events = not_erased(events, await store.erased_at(identities))
        if not events:
            return []
        known = await store.owners(identities | referrers)
        resolution = resolve(events, known, await store.user_ids(set(known.values())))
        involved = {resolution.final(c) for c in resolution.target.values()}
        involved |= set(resolution.absorbed)

        stored_referrers: set[Identity] = {
            ("user", user) for user in await store.referrer_user_ids(involved)
        }
        late = stored_referrers - first_locks
        if late and not await store.try_lock_identities(late):
            self._lock_first = hinted | late
            raise LateLockError(f"referrers busy: {len(late)}")
        # Locked now, first or late: find who holds them (a hinted one was not looked up).
        unknown = stored_referrers - known.keys()
        if unknown:
            known |= await store.owners(unknown)
        referrer_ids = {known[r] for r in referrers | stored_referrers if r in known}

        loaded = await store.lock_customers(involved | referrer_ids)
        await self._check_not_absorbed_meanwhile(store, involved, loaded)
        for customer_id in involved - set(loaded):
            loaded[customer_id] = Customer.new(customer_id, resolution.user_ids.get(customer_id))
        survivors, moved = absorb(resolution, {c: loaded[c] for c in involved})
        if moved:
            await store.repoint_absorbed(moved)

        target = {key: resolution.final(c) for key, c in resolution.target.items()}
        unique = {event_key(e): e for e in events}
        new_keys = await store.add_touchpoints([(e, target[k]) for k, e in unique.items()])
        by_customer: dict[str, list[Touchpoint]] = {}
        for key, event in unique.items():
            if key in new_keys:
                by_customer.setdefault(target[key], []).append(event)
        for customer_id, customer_events in by_customer.items():
            customer = survivors[customer_id]
            customer.state = fold(customer.state, customer_events)
            customer.changed = True
        if resolution.links:
            await store.link_identities(
                {identity: resolution.final(c) for identity, c in resolution.links.items()}
            )
        return await self._save_and_announce(store, survivors, loaded, known, resolution, now)

    async def _save_and_announce(
        self,
        store: ProfileStore,
        survivors: dict[str, Customer],
        loaded: dict[str, Customer],
        known: dict[Identity, str],
        resolution: Resolution,
        now: datetime,
    ) -> list[OutboxMessage]:
        changed = {c.customer_id: c for c in survivors.values() if c.changed}
        # Who holds each referrer's userId once this batch's merges and links are done.
        holders = {**known, **resolution.links}
        referrer_of = ReferrerLookup(
            {v: resolution.final(cid) for (kind, v), cid in holders.items() if kind == "user"}
        )
        own = {
            cid: own_snapshot(c, now=now, loyalty=self._loyalty, referrer_of=referrer_of)
            for cid, c in changed.items()
        }
        await store.save_customers(
            [
                CustomerRow(
                    customer=c,
                    email=_lower(own[cid].email),
                    net_revenue=own[cid].commerce.net_revenue,
                    currency=own[cid].commerce.currency,
                    orders_count=own[cid].commerce.orders_count,
                    referred_by=referrer_of(c.state),
                    referrer_user_id=_referrer_user(c),
                )
                for cid, c in sorted(changed.items())
            ],
            now,
        )
        for referrer in referrers_to_refresh(changed, loaded, referrer_of):
            referrer.changed = True
            changed[referrer.customer_id] = referrer
            own[referrer.customer_id] = own_snapshot(
                referrer, now=now, loyalty=self._loyalty, referrer_of=referrer_of
            )
        ids = sorted(changed)
        referrals = await store.referral_figures(ids)
        merged = await store.merged_ids(ids)
        figures = {
            cid: CrossCustomerFigures(
                merged_customer_ids=merged.get(cid, []),
                referred_customers_count=referrals[cid].customers if cid in referrals else 0,
                referred_revenue_by_currency=(
                    referrals[cid].net_revenue_by_currency if cid in referrals else {}
                ),
            )
            for cid in ids
        }
        snapshots, messages = announcements(
            list(changed.values()), own, figures, resolution, now=now
        )
        await store.save_snapshots(
            {cid: (snapshot, changed[cid].revision) for cid, snapshot in snapshots.items()}
        )
        return messages

    async def _check_not_absorbed_meanwhile(
        self, store: ProfileStore, involved: set[str], loaded: dict[str, Customer]
    ) -> None:
        missing = involved - set(loaded)
        if missing and await store.any_absorbed(missing):
            # Another consumer merged one of them away after we resolved identities.
            raise ConcurrentMergeError(f"customers merged meanwhile: {sorted(missing)}")


def _referrer_user(customer: Customer) -> str | None:
    referrer = referrer_of_state(customer.state)
    return None if referrer is None else referrer[1]


def _lower(email: str | None) -> str | None:
    return None if email is None else email.lower()

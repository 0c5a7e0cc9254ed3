"""Notify's use case: feed what happens to customers through the journey engine, in the
caller's transaction, and keep what it decides.

- lifecycle.v1 events go to the engine (`on_event`; `on_merge` for profiles_merged, whose
  absorbed customers' states join the survivor's and are then deleted); customer_erased also
  forgets what notify holds of the customer and cancels their emails not yet sent;
- profiles.v1 and scores.v1 records refresh notify's copy of the customer (a profiles.v1
  tombstone forgets it) and, for a customer in a journey, let waiting conditions see the change
  (`on_update`);
- a due wake-up moves the customer's runs on (`on_due`).

What the engine decides is kept here: the new state and next wake-up, each email to send as a
`pending` row of the email ledger (one per notification id, so a decision made again after a
redelivery or a restart sends nothing twice), each decision not to send as a `suppressed` row
published on notifications.v1, and the journey counts.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from schemas.topics import NOTIFICATIONS
from schemas.topics.lifecycle_v1 import CustomerErased, LifecycleEvent, ProfilesMerged
from schemas.topics.notifications_v1 import NotificationEvent, NotificationSuppressed
from services.notify.domain import (
    Catalog,
    CustomerState,
    Decision,
    Policy,
    Recipient,
    RunEntered,
    RunExited,
    Send,
    Suppress,
    on_due,
    on_event,
    on_merge,
    on_update,
)
from services.notify.metrics import EMAILS
from services.notify.store import NewNotification, PostgresNotifyStore, StoredRecipient
from services.runtime.messages import OutboxMessage


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A profiles.v1 record: the snapshot's JSON, or None for a tombstone (erased, merged)."""

    customer_id: str
    revision: int
    raw: bytes | None


@dataclass(frozen=True, slots=True)
class ScoresChange:
    """A scores.v1 record: its JSON, or None for a tombstone."""

    customer_id: str
    raw: bytes | None


Item = LifecycleEvent | ProfileChange | ScoresChange


def notification_message(record: NotificationEvent) -> OutboxMessage:
    """A notifications.v1 record as the outbox publishes it, keyed by customer id.

    Counted here, where every one is made: a transaction retried after a failure counts its
    records again, which a rate over minutes does not notice."""
    reason = record.reason if isinstance(record, NotificationSuppressed) else ""
    EMAILS.labels(record.type, reason).inc()
    return OutboxMessage(
        NOTIFICATIONS, record.customer_id.encode(), record.model_dump_json().encode()
    )


class RunJourneys:
    def __init__(self, catalog: Catalog, policy: Policy) -> None:
        self._catalog = catalog
        self._policy = policy

    async def __call__(
        self, store: PostgresNotifyStore, items: Sequence[Item], now: datetime
    ) -> tuple[list[OutboxMessage], bool]:
        """Apply a batch; returns what to publish, and whether an email was added to send."""
        touched: set[str] = set()
        for item in items:
            touched.add(item.customer_id)
            if isinstance(item, ProfilesMerged):
                touched.update(item.absorbed_customer_ids)
        await store.lock_customers(touched)
        catalog = await self._catalog_now(store)
        updated = await self._refresh_recipients(store, items)
        states = await store.states(touched)
        run = _Run(store, states, await _Recipients.load(store, touched), now)
        for item in items:
            customer_id = item.customer_id
            if isinstance(item, ProfileChange | ScoresChange):
                # Only a customer in a journey has conditions that may hold now.
                if customer_id in updated and customer_id in states:
                    run.decide(customer_id, partial(self._updated, catalog=catalog, now=now))
                continue
            absorbed: list[CustomerState] = []
            if isinstance(item, ProfilesMerged):
                absorbed = [states.pop(c) for c in item.absorbed_customer_ids if c in states]
            run.decide(
                customer_id,
                partial(self._event, catalog=catalog, event=item, absorbed=absorbed, now=now),
            )
            if isinstance(item, ProfilesMerged):
                await store.delete_states(item.absorbed_customer_ids)
            elif isinstance(item, CustomerErased):
                await store.forget_recipients([customer_id])
                await run.flush()  # the emails decided so far in this batch are cancelled too
                run.messages += await run.cancel_pending(customer_id)
        await run.flush()
        await store.save_states(states)
        return run.messages, run.added

    async def _catalog_now(self, store: PostgresNotifyStore) -> Catalog:
        """The catalog with the journeys paused now (read in the caller's transaction)."""
        return self._catalog.with_paused(frozenset(await store.pauses()))

    def _event(
        self,
        state: CustomerState,
        recipient: Recipient,
        *,
        catalog: Catalog,
        event: LifecycleEvent,
        absorbed: Sequence[CustomerState],
        now: datetime,
    ) -> Decision:
        if isinstance(event, ProfilesMerged):
            return on_merge(catalog, state, absorbed, recipient, now, self._policy)
        return on_event(catalog, state, recipient, event, now, self._policy)

    def _updated(
        self, state: CustomerState, recipient: Recipient, *, catalog: Catalog, now: datetime
    ) -> Decision:
        return on_update(catalog, state, recipient, now, self._policy)

    def _due(
        self, state: CustomerState, recipient: Recipient, *, catalog: Catalog, now: datetime
    ) -> Decision:
        return on_due(catalog, state, recipient, now, self._policy)

    async def wake(
        self, store: PostgresNotifyStore, customer_ids: Sequence[str], now: datetime
    ) -> tuple[list[OutboxMessage], bool]:
        """Move on the customers whose wake-up is due (locked by the caller's claim)."""
        catalog = await self._catalog_now(store)
        states = await store.states(customer_ids)
        run = _Run(store, states, await _Recipients.load(store, customer_ids), now)
        for customer_id in customer_ids:
            run.decide(customer_id, partial(self._due, catalog=catalog, now=now))
        await run.flush()
        await store.save_states({c: states.get(c, CustomerState()) for c in customer_ids})
        return run.messages, run.added

    @staticmethod
    async def _refresh_recipients(store: PostgresNotifyStore, items: Sequence[Item]) -> set[str]:
        """Keep the newer profiles and the scores; the customers whose copy changed."""
        updated: set[str] = set()
        # Snapshots are kept together, the newest per customer, until another kind of record
        # comes (which must see them stored first).
        snapshots: dict[str, tuple[int, bytes]] = {}
        for item in items:
            if isinstance(item, ProfileChange) and item.raw is not None:
                held = snapshots.get(item.customer_id)
                if held is None or held[0] < item.revision:
                    snapshots[item.customer_id] = (item.revision, item.raw)
                continue
            updated |= await store.save_profiles(snapshots)
            snapshots.clear()
            if isinstance(item, ProfileChange):  # a tombstone
                await store.forget_recipients([item.customer_id])
                updated.add(item.customer_id)
            elif isinstance(item, ScoresChange) and item.raw is not None:
                await store.save_scores(item.customer_id, item.raw)
                updated.add(item.customer_id)
        updated |= await store.save_profiles(snapshots)
        return updated


@dataclass(frozen=True, slots=True)
class _Recipients:
    """The customers as the engine sees them, and whether each allows tracking."""

    seen: Mapping[str, Recipient]
    tracking_off: frozenset[str]

    @classmethod
    async def load(
        cls, store: PostgresNotifyStore, customer_ids: Sequence[str] | set[str]
    ) -> "_Recipients":
        held = await store.recipients(customer_ids)
        addresses = {
            c: str(r.profile["email"]).lower()
            for c, r in held.items()
            if r.profile and r.profile.get("email")
        }
        suppressed = await store.suppressed(addresses.values())
        seen = {
            c: _recipient(c, held.get(c), suppressed.get(addresses.get(c, "")))
            for c in customer_ids
        }
        return cls(seen, frozenset(c for c, r in held.items() if not r.tracking))


def _recipient(customer_id: str, held: StoredRecipient | None, suppressed: str | None) -> Recipient:
    if held is None:
        return Recipient(customer_id, known=False)
    return Recipient.from_records(customer_id, held.profile, held.scores, suppressed=suppressed)


class _Run:
    """One batch's decisions: states kept in memory, actions gathered and then kept in the
    store with a few statements (`flush`)."""

    def __init__(
        self,
        store: PostgresNotifyStore,
        states: dict[str, CustomerState],
        recipients: _Recipients,
        now: datetime,
    ) -> None:
        self._store = store
        self._states = states
        self._recipients = recipients
        self._now = now
        self.messages: list[OutboxMessage] = []
        self.added = False
        self._notifications: list[NewNotification] = []
        # What each suppression publishes, once recorded (by notification id).
        self._suppressions: dict[str, NotificationEvent] = {}
        self._counters: list[tuple[str, str]] = []

    def decide(
        self, customer_id: str, call: Callable[[CustomerState, Recipient], Decision]
    ) -> None:
        state = self._states.get(customer_id, CustomerState())
        recipient = self._recipients.seen.get(customer_id) or Recipient(customer_id, known=False)
        decision: Decision = call(state, recipient)
        self._states[customer_id] = decision.state
        self._keep(decision)

    def _keep(self, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, Send):
                # The journey's tracking switch is in the Send; the customer's is notify's.
                if action.tracking and action.customer_id in self._recipients.tracking_off:
                    action = dataclasses.replace(action, tracking=False)
                self._notifications.append(NewNotification.pending(action, self._now))
            elif isinstance(action, Suppress):
                self._notifications.append(_suppressed(action))
                self._suppressions[action.notification_id] = action.record()
            elif isinstance(action, RunEntered):
                self._counters.append((action.journey, "entered"))
            elif isinstance(action, RunExited):
                self._counters.append((action.journey, f"exited:{action.reason}"))

    async def flush(self) -> None:
        """Keep the actions gathered so far: the ledger's rows (a suppression is published
        once recorded) and the journey counts."""
        added = await self._store.add_notifications(self._notifications)
        for notification in self._notifications:
            if notification.notification_id not in added:
                continue  # decided before: recorded and published then
            added.discard(notification.notification_id)
            if notification.status == "pending":
                self.added = True
            else:
                record = self._suppressions[notification.notification_id]
                self.messages.append(notification_message(record))
        await self._store.count(self._counters)
        self._notifications.clear()
        self._suppressions.clear()
        self._counters.clear()

    async def cancel_pending(self, customer_id: str) -> list[OutboxMessage]:
        """An erased customer's emails not yet sent are suppressed, and no address is kept."""
        return [
            notification_message(record)
            for record in await self._store.cancel_pending(customer_id, self._now)
        ]


def _suppressed(action: Suppress) -> NewNotification:
    return NewNotification(
        action.notification_id,
        action.customer_id,
        action.journey,
        action.step,
        action.template,
        action.kind,
        action.trigger_event_id,
        status="suppressed",
        at=action.at,
        reason=action.reason,
        detail=action.detail,
    )

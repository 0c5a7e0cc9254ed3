"""Notify's PostgreSQL store: recipients, journey states, the email ledger, suppressions.

Every method runs in the caller's transaction. A customer's journey state is changed only under
that customer's advisory lock (`lock_customers`, taken in one sorted order), which the
lifecycle, profile and scores consumers and the wake-up worker all take, so the engine never
runs twice at once for one customer.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics.notifications_v1 import NotificationSuppressed
from services.notify.domain import CustomerState, Send

_LOCK_CUSTOMERS = text(
    "SELECT pg_advisory_xact_lock(hashtext('retain:notify:' || c)) "
    "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY c"
)
# The ones whose lock was free, in the order given; each now locked.
_TRY_LOCK_CUSTOMERS = text(
    "SELECT c FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS due(c, n) "
    "WHERE pg_try_advisory_xact_lock(hashtext('retain:notify:' || c)) ORDER BY n"
)
_DUE_CUSTOMERS = text(
    "SELECT customer_id FROM notify.customers WHERE wake_at <= :now "
    "ORDER BY wake_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_NEXT_WAKE = text("SELECT min(wake_at) FROM notify.customers")
_STATES = text(
    "SELECT customer_id, CAST(state AS text) AS state FROM notify.customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_SAVE_STATES = text(
    "INSERT INTO notify.customers (customer_id, state, wake_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:states AS json[]), "
    "CAST(:wake_ats AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET state = excluded.state, wake_at = excluded.wake_at"
)
_DELETE_STATES = text("DELETE FROM notify.customers WHERE customer_id = ANY(CAST(:ids AS text[]))")
_RECIPIENTS = text(
    "SELECT customer_id, CAST(profile AS text) AS profile, CAST(scores AS text) AS scores, "
    "tracking FROM notify.recipients WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_SAVE_PROFILES = text(
    "INSERT INTO notify.recipients AS r (customer_id, profile_revision, profile) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:revisions AS bigint[]), "
    "CAST(:profiles AS json[])) ON CONFLICT (customer_id) DO UPDATE "
    "SET profile_revision = excluded.profile_revision, profile = excluded.profile "
    "WHERE r.profile_revision IS NULL OR r.profile_revision < excluded.profile_revision "
    "RETURNING customer_id"
)
_SAVE_SCORES = text(
    "INSERT INTO notify.recipients (customer_id, scores) VALUES (:id, CAST(:scores AS json)) "
    "ON CONFLICT (customer_id) DO UPDATE SET scores = excluded.scores"
)
_FORGET_RECIPIENTS = text(
    "DELETE FROM notify.recipients WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_SET_TRACKING = text(
    "INSERT INTO notify.recipients (customer_id, tracking) VALUES (:id, :tracking) "
    "ON CONFLICT (customer_id) DO UPDATE SET tracking = excluded.tracking"
)
_SUPPRESSED = text(
    "SELECT address, reason FROM notify.suppressions "
    "WHERE address = ANY(CAST(:addresses AS text[]))"
)
_SUPPRESS = text(
    "INSERT INTO notify.suppressions (address, reason, detail, created_at) "
    "VALUES (lower(:address), :reason, :detail, :at) ON CONFLICT (address) DO NOTHING "
    "RETURNING address"
)
_UNSUPPRESS = text("DELETE FROM notify.suppressions WHERE address = lower(:address)")
_SUPPRESSIONS_PAGE = text(
    "SELECT address, reason, detail, created_at FROM notify.suppressions "
    "WHERE address > :after ORDER BY address LIMIT :limit"
)
_ADD_NOTIFICATIONS = text(
    "INSERT INTO notify.notifications (notification_id, customer_id, journey, step, template, "
    "kind, trigger_event_id, status, send, to_address, due_at, reason, detail, created_at, "
    "updated_at) SELECT n.id, n.customer_id, n.journey, n.step, n.template, n.kind, "
    "n.trigger_event_id, n.status, n.send, n.to_address, n.at, n.reason, n.detail, n.at, n.at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:customer_ids AS text[]), "
    "CAST(:journeys AS text[]), CAST(:steps AS integer[]), CAST(:templates AS text[]), "
    "CAST(:kinds AS text[]), CAST(:trigger_event_ids AS text[]), CAST(:statuses AS text[]), "
    "CAST(:sends AS json[]), CAST(:to_addresses AS text[]), CAST(:ats AS timestamptz[]), "
    "CAST(:reasons AS text[]), CAST(:details AS text[])) AS n(id, customer_id, journey, step, "
    "template, kind, trigger_event_id, status, send, to_address, at, reason, detail) "
    "ORDER BY n.id ON CONFLICT (notification_id) DO NOTHING RETURNING notification_id"
)
_CANCEL_PENDING = text(
    "UPDATE notify.notifications SET status = 'suppressed', reason = 'customer_erased', "
    "send = NULL, updated_at = :at WHERE customer_id = :id AND status = 'pending' "
    "RETURNING notification_id, journey, template, kind, trigger_event_id"
)
_FORGET_ADDRESSES = text(
    "UPDATE notify.notifications SET to_address = NULL, send = NULL WHERE customer_id = :id"
)
_CLAIM_SENDS = text(
    "UPDATE notify.notifications SET status = 'sending', attempts = attempts + 1, "
    "updated_at = :now WHERE notification_id IN (SELECT notification_id "
    "FROM notify.notifications WHERE status = 'pending' AND due_at <= :now "
    "ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "RETURNING notification_id, kind, attempts, CAST(send AS text) AS send"
)
_STALE_SENDS = text(
    "SELECT notification_id, kind, CAST(send AS text) AS send FROM notify.notifications "
    "WHERE status = 'sending' AND updated_at < :before ORDER BY updated_at "
    "FOR UPDATE SKIP LOCKED"
)
_FINISH_SENDS = text(
    "UPDATE notify.notifications AS n SET status = o.status, updated_at = :at, "
    "message_id = coalesce(o.message_id, n.message_id), reason = coalesce(o.reason, n.reason), "
    "detail = coalesce(o.detail, n.detail) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:message_ids AS text[]), "
    "CAST(:reasons AS text[]), CAST(:details AS text[])) "
    "AS o(notification_id, status, message_id, reason, detail) "
    "WHERE n.notification_id = o.notification_id"
)
_RETRY_SENDS = text(
    "UPDATE notify.notifications AS n SET status = 'pending', due_at = r.due_at, "
    "detail = r.detail, updated_at = :at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:due_ats AS timestamptz[]), "
    "CAST(:details AS text[])) AS r(notification_id, due_at, detail) "
    "WHERE n.notification_id = r.notification_id"
)
_JOURNEY_COUNTS = text("SELECT journey, counter, count AS n FROM notify.journey_counts")
_PAUSES = text("SELECT journey, paused_by, paused_at FROM notify.journey_pauses")
_PAUSE = text(
    "INSERT INTO notify.journey_pauses (journey, paused_by, paused_at) "
    "VALUES (:journey, :by, :at) ON CONFLICT (journey) DO NOTHING"
)
_RESUME = text("DELETE FROM notify.journey_pauses WHERE journey = :journey")
_EMAIL_COUNTS = text(
    "SELECT journey, status, coalesce(reason, '') AS reason, count(*) AS n "
    "FROM notify.notifications GROUP BY journey, status, coalesce(reason, '')"
)
_NOTIFICATIONS_OF = text(
    "SELECT notification_id, journey, step, template, kind, trigger_event_id, status, reason, "
    "detail, attempts, message_id, created_at, updated_at FROM notify.notifications "
    "WHERE customer_id = :id ORDER BY created_at DESC, notification_id LIMIT :limit"
)
_EMAIL_OF_LINK = text(
    "SELECT kind, template, journey, trigger_event_id FROM notify.notifications "
    "WHERE notification_id = :id AND customer_id = :customer_id"
)
_COUNT = text(
    "INSERT INTO notify.journey_counts AS j (journey, counter, count) "
    "SELECT * FROM unnest(CAST(:journeys AS text[]), CAST(:counters AS text[]), "
    "CAST(:counts AS bigint[])) ON CONFLICT (journey, counter) DO UPDATE "
    "SET count = j.count + excluded.count"
)


@dataclass(frozen=True, slots=True)
class StoredRecipient:
    profile: dict[str, Any] | None
    scores: dict[str, Any] | None
    tracking: bool


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A decision for the email ledger: an email to deliver (`pending`, with the engine's Send
    as JSON) or one not sent (`suppressed`, with the reason)."""

    notification_id: str
    customer_id: str
    journey: str
    step: int
    template: str
    kind: str
    trigger_event_id: str
    status: str
    at: datetime
    send: str | None = None
    to_address: str | None = None
    reason: str | None = None
    detail: str | None = None

    @classmethod
    def pending(cls, send: Send, at: datetime) -> "NewNotification":
        return cls(
            send.notification_id,
            send.customer_id,
            send.journey,
            send.step,
            send.template,
            send.kind,
            send.trigger_event_id,
            status="pending",
            at=at,
            send=send_to_json(send),
            to_address=send.to,
        )


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    kind: str
    attempts: int
    send: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How an email ended: sent, bounced, failed, suppressed or uncertain."""

    notification_id: str
    status: str
    message_id: str | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SendRetry:
    notification_id: str
    due_at: datetime
    detail: str


def send_to_json(send: Send) -> str:
    return orjson.dumps(
        {
            "notification_id": send.notification_id,
            "customer_id": send.customer_id,
            "journey": send.journey,
            "step": send.step,
            "template": send.template,
            "kind": send.kind,
            "trigger_event_id": send.trigger_event_id,
            "to": send.to,
            "tracking": send.tracking,
            "context": send.context,
        },
        default=str,
    ).decode()


def send_from_json(raw: Mapping[str, Any]) -> Send:
    return Send(
        notification_id=raw["notification_id"],
        customer_id=raw["customer_id"],
        journey=raw["journey"],
        step=int(raw["step"]),
        template=raw["template"],
        kind=raw["kind"],
        trigger_event_id=raw["trigger_event_id"],
        to=raw["to"],
        tracking=bool(raw["tracking"]),
        context=raw.get("context") or {},
    )


class PostgresNotifyStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    # -- locks and journey states

    async def lock_customers(self, customer_ids: Iterable[str]) -> None:
        ids = sorted(set(customer_ids))
        if ids:
            await self._connection.execute(_LOCK_CUSTOMERS, {"ids": ids})

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        """Customers whose wake-up is due that no other worker holds, each now locked."""
        due = list(await self._connection.scalars(_DUE_CUSTOMERS, {"now": now, "limit": limit}))
        if not due:
            return []
        # A consumer may hold one: it moves them on itself.
        return list(await self._connection.scalars(_TRY_LOCK_CUSTOMERS, {"ids": due}))

    async def next_wake(self) -> datetime | None:
        found: datetime | None = await self._connection.scalar(_NEXT_WAKE)
        return found

    async def states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        rows = await self._connection.execute(_STATES, {"ids": sorted(set(customer_ids))})
        return {r.customer_id: CustomerState.from_json(orjson.loads(r.state)) for r in rows}

    async def save_states(self, states: Mapping[str, CustomerState]) -> None:
        """Keep each customer's state and next wake-up (an empty state: the row goes)."""
        empty = [c for c, state in states.items() if state.is_empty]
        if empty:
            await self.delete_states(empty)
        kept = sorted((c, state) for c, state in states.items() if not state.is_empty)
        if kept:
            await self._connection.execute(
                _SAVE_STATES,
                {
                    "ids": [c for c, _ in kept],
                    "states": [orjson.dumps(s.to_json(), default=str).decode() for _, s in kept],
                    "wake_ats": [s.next_wake for _, s in kept],
                },
            )

    async def delete_states(self, customer_ids: Iterable[str]) -> None:
        await self._connection.execute(_DELETE_STATES, {"ids": sorted(set(customer_ids))})

    # -- what notify knows of each customer

    async def recipients(self, customer_ids: Iterable[str]) -> dict[str, StoredRecipient]:
        rows = await self._connection.execute(_RECIPIENTS, {"ids": sorted(set(customer_ids))})
        return {
            r.customer_id: StoredRecipient(
                orjson.loads(r.profile) if r.profile else None,
                orjson.loads(r.scores) if r.scores else None,
                bool(r.tracking),
            )
            for r in rows
        }

    async def save_profiles(self, snapshots: Mapping[str, tuple[int, bytes]]) -> set[str]:
        """Keep each customer's snapshot (revision, JSON) if it is newer than the one held;
        the customers whose snapshot was kept."""
        if not snapshots:
            return set()
        ordered = sorted(snapshots.items())  # rows locked in one order
        stored = await self._connection.scalars(
            _SAVE_PROFILES,
            {
                "ids": [c for c, _ in ordered],
                "revisions": [revision for _, (revision, _) in ordered],
                "profiles": [raw.decode() for _, (_, raw) in ordered],
            },
        )
        return set(stored)

    async def save_scores(self, customer_id: str, raw: bytes) -> None:
        await self._connection.execute(_SAVE_SCORES, {"id": customer_id, "scores": raw.decode()})

    async def forget_recipients(self, customer_ids: Iterable[str]) -> None:
        await self._connection.execute(_FORGET_RECIPIENTS, {"ids": sorted(set(customer_ids))})

    async def set_tracking(self, customer_id: str, tracking: bool) -> None:
        await self._connection.execute(_SET_TRACKING, {"id": customer_id, "tracking": tracking})

    # -- suppression list

    async def suppressed(self, addresses: Iterable[str]) -> dict[str, str]:
        """Address (lower case) -> why nothing goes to it, for those on the list."""
        wanted = sorted({a.lower() for a in addresses})
        if not wanted:
            return {}
        rows = await self._connection.execute(_SUPPRESSED, {"addresses": wanted})
        return {r.address: r.reason for r in rows}

    async def suppress(self, address: str, reason: str, detail: str | None, at: datetime) -> bool:
        """Add the address; False if it was on the list already (its first reason stays)."""
        added = await self._connection.scalar(
            _SUPPRESS, {"address": address, "reason": reason, "detail": detail, "at": at}
        )
        return added is not None

    async def unsuppress(self, address: str) -> None:
        await self._connection.execute(_UNSUPPRESS, {"address": address})

    async def suppressions(self, after: str, limit: int) -> list[dict[str, Any]]:
        rows = await self._connection.execute(
            _SUPPRESSIONS_PAGE, {"after": after.lower(), "limit": limit}
        )
        return [dict(r._mapping) for r in rows]

    # -- the email ledger

    async def add_notifications(self, notifications: Sequence["NewNotification"]) -> set[str]:
        """Record decisions in the ledger, in one statement; the notification ids that were
        new. One recorded before (the engine decided it again after a redelivery or a
        restart) is left as it is: an email goes once."""
        if not notifications:
            return set()
        rows = sorted(notifications, key=lambda n: n.notification_id)  # one lock order
        added = await self._connection.scalars(
            _ADD_NOTIFICATIONS,
            {
                "ids": [n.notification_id for n in rows],
                "customer_ids": [n.customer_id for n in rows],
                "journeys": [n.journey for n in rows],
                "steps": [n.step for n in rows],
                "templates": [n.template for n in rows],
                "kinds": [n.kind for n in rows],
                "trigger_event_ids": [n.trigger_event_id for n in rows],
                "statuses": [n.status for n in rows],
                "sends": [n.send for n in rows],
                "to_addresses": [n.to_address for n in rows],
                "ats": [n.at for n in rows],
                "reasons": [n.reason for n in rows],
                "details": [n.detail for n in rows],
            },
        )
        return set(added)

    async def claim_sends(self, now: datetime, limit: int) -> list[ClaimedSend]:
        """Due pending emails no other sender holds, marked `sending` (the attempt recorded)."""
        rows = await self._connection.execute(_CLAIM_SENDS, {"now": now, "limit": limit})
        return [ClaimedSend(r.kind, int(r.attempts), orjson.loads(r.send)) for r in rows]

    async def stale_sends(self, before: datetime) -> list[ClaimedSend]:
        rows = await self._connection.execute(_STALE_SENDS, {"before": before})
        return [ClaimedSend(r.kind, 0, orjson.loads(r.send)) for r in rows]

    async def finish_sends(self, outcomes: Sequence[SendOutcome], at: datetime) -> None:
        """Record how each email ended, all with one statement."""
        if not outcomes:
            return
        await self._connection.execute(
            _FINISH_SENDS,
            {
                "at": at,
                "ids": [o.notification_id for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "message_ids": [o.message_id for o in outcomes],
                "reasons": [o.reason for o in outcomes],
                "details": [None if o.detail is None else o.detail[:1000] for o in outcomes],
            },
        )

    async def retry_sends(self, retries: Sequence[SendRetry], at: datetime) -> None:
        """Put emails back to `pending`, each due again at its own time."""
        if not retries:
            return
        await self._connection.execute(
            _RETRY_SENDS,
            {
                "at": at,
                "ids": [r.notification_id for r in retries],
                "due_ats": [r.due_at for r in retries],
                "details": [r.detail[:1000] for r in retries],
            },
        )

    async def cancel_pending(self, customer_id: str, at: datetime) -> list[NotificationSuppressed]:
        """An erased customer: their emails not yet sent become suppressed, and the ledger keeps
        no address of theirs."""
        rows = await self._connection.execute(_CANCEL_PENDING, {"id": customer_id, "at": at})
        cancelled = [
            NotificationSuppressed(
                type="suppressed",
                notification_id=r.notification_id,
                customer_id=customer_id,
                occurred_at=at,
                kind=r.kind,
                template=r.template,
                journey=r.journey,
                trigger_event_id=r.trigger_event_id,
                reason="customer_erased",
            )
            for r in rows
        ]
        await self._connection.execute(_FORGET_ADDRESSES, {"id": customer_id})
        return cancelled

    async def pauses(self) -> dict[str, tuple[str, datetime]]:
        """Paused journey -> who paused it and when."""
        return {
            r.journey: (r.paused_by, r.paused_at) for r in await self._connection.execute(_PAUSES)
        }

    async def pause(self, journey: str, by: str, at: datetime) -> None:
        """Pause a journey; pausing a paused one keeps the first record."""
        await self._connection.execute(_PAUSE, {"journey": journey, "by": by, "at": at})

    async def resume(self, journey: str) -> None:
        await self._connection.execute(_RESUME, {"journey": journey})

    async def journey_counts(self) -> dict[str, dict[str, int]]:
        """Per journey: runs entered and ended (`exited:<reason>`)."""
        found: dict[str, dict[str, int]] = {}
        for row in await self._connection.execute(_JOURNEY_COUNTS):
            found.setdefault(row.journey, {})[row.counter] = int(row.n)
        return found

    async def email_counts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Per journey: emails by (status, reason)."""
        found: dict[str, dict[tuple[str, str], int]] = {}
        for row in await self._connection.execute(_EMAIL_COUNTS):
            found.setdefault(row.journey, {})[(row.status, row.reason)] = int(row.n)
        return found

    async def notifications_of(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        rows = await self._connection.execute(
            _NOTIFICATIONS_OF, {"id": customer_id, "limit": limit}
        )
        return [dict(r._mapping) for r in rows]

    async def email_of_link(self, notification_id: str, customer_id: str) -> dict[str, Any] | None:
        """The kind, template, journey and trigger of the email a link of ours names."""
        row = (
            await self._connection.execute(
                _EMAIL_OF_LINK, {"id": notification_id, "customer_id": customer_id}
            )
        ).first()
        return dict(row._mapping) if row else None

    async def count(self, counters: Iterable[tuple[str, str]]) -> None:
        """Add one to each (journey, counter), as often as it is listed."""
        totals = sorted(Counter(counters).items())  # rows locked in one order
        if totals:
            await self._connection.execute(
                _COUNT,
                {
                    "journeys": [journey for (journey, _), _ in totals],
                    "counters": [counter for (_, counter), _ in totals],
                    "counts": [n for _, n in totals],
                },
            )

"""What the engine decides: the actions a call returns, and the notifications.v1 records the
shell publishes for them."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from schemas.topics.notifications_v1 import (
    EmailKind,
    NotificationBounced,
    NotificationSent,
    NotificationSuppressed,
    NotificationUncertain,
    SuppressionReason,
)
from services.notify.domain.state import CustomerState

_NOTIFICATION_NAMESPACE = UUID("3d0f6a52-8c1e-5b7a-9e44-2a6f1c0b9d13")


def notification_id(
    journey: str,
    customer_id: str,
    run_key: str,
    step: int,
    erased_at: datetime | None = None,
) -> str:
    """One id per intended email: the same journey, customer, run and step give the same id,
    whatever redelivery or restart happens, so the shell can refuse a second one.

    After an erasure the customer id may live again (a new sign-up): its emails then carry the
    erasure's time too, so they never collide with those of the erased life, whose records the
    erasure removed."""
    parts = [journey, customer_id, run_key, str(step)]
    if erased_at is not None:
        parts.append(erased_at.isoformat())
    return str(uuid5(_NOTIFICATION_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver this email now (the shell renders the template and sends it once per id)."""

    notification_id: str
    customer_id: str
    journey: str
    step: int
    template: str
    kind: EmailKind
    trigger_event_id: str
    to: str
    tracking: bool
    context: Mapping[str, Any]
    """{"journey", "run_key", "trigger": the trigger event's JSON}; the shell adds the profile
    and scores it holds when it renders."""

    def _about(self, at: datetime) -> dict[str, Any]:
        """What every notifications.v1 record of this email says."""
        return {
            "notification_id": self.notification_id,
            "customer_id": self.customer_id,
            "occurred_at": at,
            "kind": self.kind,
            "template": self.template,
            "journey": self.journey,
            "trigger_event_id": self.trigger_event_id,
        }

    def sent(self, occurred_at: datetime, smtp_message_id: str | None = None) -> NotificationSent:
        """The notifications.v1 record once the email is handed to SMTP."""
        return NotificationSent(
            type="sent", smtp_message_id=smtp_message_id, **self._about(occurred_at)
        )

    def held_back(self, listed_as: str, at: datetime) -> NotificationSuppressed:
        """The address went on the suppression list between the decision and the delivery
        (`listed_as`: the list's reason): nothing is sent. An unsubscribe says so."""
        reason: SuppressionReason = (
            "unsubscribed" if listed_as == "unsubscribed" else "suppressed_address"
        )
        return NotificationSuppressed(
            type="suppressed", reason=reason, detail=listed_as, **self._about(at)
        )

    def bounced(
        self, *, hard: bool, code: int | None, text: str, at: datetime
    ) -> NotificationBounced:
        return NotificationBounced(
            type="bounced",
            bounce_type="hard" if hard else "soft",
            smtp_status=code if code is not None and 200 <= code <= 599 else None,
            diagnostic=text[:1024],
            **self._about(at),
        )

    def uncertain(self, smtp_message_id: str, at: datetime) -> NotificationUncertain:
        """The sender stopped between the SMTP transaction and recording its answer."""
        return NotificationUncertain(
            type="uncertain",
            retried=self.retried_when_uncertain,
            smtp_message_id=smtp_message_id,
            **self._about(at),
        )

    @property
    def retried_when_uncertain(self) -> bool:
        """A receipt had better arrive twice than never (the same Message-ID lets a reader
        tell); a marketing email had better not arrive twice."""
        return self.kind == "transactional"


@dataclass(frozen=True, slots=True)
class Suppress:
    """A decision not to send, with why: published as a notifications.v1 `suppressed` record."""

    notification_id: str
    customer_id: str
    journey: str
    step: int
    template: str
    kind: EmailKind
    trigger_event_id: str
    reason: SuppressionReason
    detail: str | None
    at: datetime

    def record(self) -> NotificationSuppressed:
        return NotificationSuppressed(
            type="suppressed",
            notification_id=self.notification_id,
            customer_id=self.customer_id,
            occurred_at=self.at,
            kind=self.kind,
            template=self.template,
            journey=self.journey,
            trigger_event_id=self.trigger_event_id,
            reason=self.reason,
            detail=self.detail,
        )


ExitReason = Literal[
    "completed",  # every step done
    "exited",  # an exit_when event, or a wait_until whose branch says exit
    "converted",  # the goal was reached
    "condition_failed",  # a condition step was false
    "timeout_exit",  # a wait_until timed out on an exit branch
    "erased",  # the customer was erased
    "disabled",  # the journey was disabled or removed
    "merged",  # a merged-away customer's run the survivor already had
]


@dataclass(frozen=True, slots=True)
class RunEntered:
    customer_id: str
    journey: str
    run_key: str
    trigger_event_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RunExited:
    customer_id: str
    journey: str
    run_key: str
    trigger_event_id: str
    reason: ExitReason
    step: int
    at: datetime


Action = Send | Suppress | RunEntered | RunExited


@dataclass(frozen=True, slots=True)
class Decision:
    """A call's result: store `state` (as `state.to_json()`), act on `actions` in order, and
    schedule the customer's wake-up at `next_wake` (None: delete it)."""

    state: CustomerState
    actions: tuple[Action, ...]

    @property
    def next_wake(self) -> datetime | None:
        return self.state.next_wake

    @property
    def sends(self) -> tuple[Send, ...]:
        return tuple(a for a in self.actions if isinstance(a, Send))

    @property
    def suppressions(self) -> tuple[Suppress, ...]:
        return tuple(a for a in self.actions if isinstance(a, Suppress))

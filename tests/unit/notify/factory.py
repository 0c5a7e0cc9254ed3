"""lifecycle.v1 events, recipients and a simulated shell for the notify engine's tests."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.topics.lifecycle_v1 import (
    CartActivity,
    ConsentChanged,
    CustomerErased,
    LifecycleEvent,
    OrderCompleted,
    ReferralConverted,
    SegmentChanged,
    SignedUp,
    StageChanged,
)
from schemas.topics.profiles_v1 import ConsentStatus
from services.notify.domain import (
    Action,
    Catalog,
    CustomerState,
    Decision,
    Policy,
    Recipient,
    RunExited,
    Send,
    Suppress,
    on_due,
    on_event,
)
from services.notify.journeys import load

CATALOG = load()
CUSTOMER = "c-1"
# A Tuesday, noon UTC: 13:00 in Paris, 08:00 in New York; no quiet hours in either.
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def recipient(
    *,
    email: str | None = "ann@example.com",
    consent: ConsentStatus = "opted_in",
    consent_at: datetime | None = datetime(2026, 1, 1, tzinfo=UTC),
    timezone: str | None = "Europe/Paris",
    suppressed: str | None = None,
    erased: bool = False,
    points: int = 0,
    recommendations: Iterable[str] = ("p-9",),
) -> Recipient:
    return Recipient(
        customer_id=CUSTOMER,
        email=email,
        consent=consent,
        consent_at=consent_at,
        timezone=timezone,
        suppressed=suppressed,
        erased=erased,
        profile={"customer_id": CUSTOMER, "loyalty": {"points_balance": points}},
        scores={"customer_id": CUSTOMER, "recommendations": list(recommendations)},
    )


def _base(kind: str, at: datetime, event_id: str | None) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": event_id or f"{kind}@{at.isoformat()}",
        "customer_id": CUSTOMER,
        "occurred_at": at,
    }


def cart(at: datetime, items: int = 1, *, event_id: str | None = None) -> CartActivity:
    return CartActivity(
        **_base("cart_activity", at, event_id),
        cart_id="cart-1",
        items_count=items,
        value="10.00" if items else "0",
        last_activity_at=at,
    )


def order(
    at: datetime, order_id: str = "o-1", *, historical: bool = False, event_id: str | None = None
) -> OrderCompleted:
    return OrderCompleted(
        **_base("order_completed", at, event_id or f"order:{order_id}"),
        order_id=order_id,
        revenue="42.50",
        currency="EUR",
        historical=historical,
    )


def consent(at: datetime, status: str, *, event_id: str | None = None) -> ConsentChanged:
    return ConsentChanged(**_base("consent_changed", at, event_id), status=status)


def signed_up(at: datetime) -> SignedUp:
    return SignedUp(**_base("signed_up", at, None))


def lapsed(at: datetime) -> StageChanged:
    return StageChanged(
        **_base("stage_changed", at, None), from_stage="retention", to_stage="lapsed"
    )


def segment(
    at: datetime, dimension: str, to: str, direction: str | None = "up", frm: str | None = None
) -> SegmentChanged:
    return SegmentChanged(
        **_base("segment_changed", at, f"segment:{dimension}:{to}@{at.isoformat()}"),
        dimension=dimension,
        from_segment=frm,
        to_segment=to,
        direction=direction,
    )


def referral(at: datetime, referred: str = "c-2") -> ReferralConverted:
    return ReferralConverted(
        **_base("referral_converted", at, f"referral:{referred}"),
        referred_customer_id=referred,
        order_id="o-r",
        revenue="20",
    )


def erased(at: datetime) -> CustomerErased:
    return CustomerErased(**_base("customer_erased", at, None))


@dataclass
class Sim:
    """The shell, simulated: events delivered at chosen times, wake-ups honoured (late by
    `lateness`), the state stored as JSON text between calls, every action logged with the
    call's time."""

    recipient: Recipient = field(default_factory=recipient)
    catalog: Catalog = CATALOG
    policy: Policy = field(default_factory=Policy)
    lateness: timedelta = timedelta(0)
    stored: str = field(default_factory=lambda: json.dumps(CustomerState().to_json()))
    log: list[tuple[datetime, Action]] = field(default_factory=list)
    log_calls: list[int] = field(default_factory=list)
    """The call (0, 1, ...) each logged action came from, in step with `log`."""
    delivered: list[tuple[int, LifecycleEvent]] = field(default_factory=list)
    """Every event delivered, with the call that delivered it."""
    clock: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    calls: int = 0

    @property
    def state(self) -> CustomerState:
        return CustomerState.from_json(json.loads(self.stored))

    def _store(self, decision: Decision, now: datetime) -> None:
        state = decision.state
        text = json.dumps(state.to_json())
        assert CustomerState.from_json(json.loads(text)) == state  # the JSON round trip
        for run in state.runs:
            assert run.wake_at > now or run.since > now, (run, now)
        self.stored = text
        self.log.extend((now, action) for action in decision.actions)
        self.log_calls.extend(self.calls for _ in decision.actions)
        self.calls += 1

    def run_until(self, until: datetime) -> None:
        """Honour every wake-up due by `until`."""
        for _ in range(10_000):
            wake = self.state.next_wake
            if wake is None or wake + self.lateness > until:
                return
            now = max(wake + self.lateness, self.clock)
            self.clock = now
            self._store(on_due(self.catalog, self.state, self.recipient, now, self.policy), now)
        raise AssertionError("wake-ups do not move forward")

    def deliver(self, event: LifecycleEvent, at: datetime) -> Decision:
        self.run_until(at)
        self.clock = max(self.clock, at)
        decision = on_event(self.catalog, self.state, self.recipient, event, at, self.policy)
        self.delivered.append((self.calls, event))
        self._store(decision, at)
        return decision

    def sends(self) -> list[tuple[datetime, Send]]:
        return [(at, a) for at, a in self.log if isinstance(a, Send)]

    def suppressions(self) -> list[tuple[datetime, Suppress]]:
        return [(at, a) for at, a in self.log if isinstance(a, Suppress)]

    def exits(self) -> list[RunExited]:
        return [a for _, a in self.log if isinstance(a, RunExited)]

    def sent(self) -> list[tuple[datetime, str]]:
        """(when, template) of every Send."""
        return [(at, send.template) for at, send in self.sends()]

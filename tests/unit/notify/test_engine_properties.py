"""The engine's promises as properties, over random histories of the shipped journeys.

Each history is lifecycle events on a 30-minute grid over three weeks spanning the March
daylight-saving changes, delivered late (up to three days) and so out of order, some of them
twice; a shell honouring wake-ups on time or late; random recipients (consent, zone, address,
suppression) and random policies (caps, quiet hours, default zone). After every call the state
is stored as JSON text and read back (the simulator checks the round trip).

Checked against what the simulated shell knew at each call:
- no marketing email without consent (the latest consent statement known, by event time), and
  no email at all to a suppressed address, without an address, or after an erasure for
  anything that happened before it;
- caps are never exceeded in any window (within a customer's life: an erasure forgets); no
  marketing email inside quiet hours, local time;
- no email once an exit or goal event that occurred at or after its trigger was known;
- at most one action per notification id; at most one run per journey and trigger event;
- historical orders and triggers older than max_trigger_age start nothing.
"""

from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._types import EARLIEST
from schemas.journey_v1 import WaitUntilStep
from schemas.topics.lifecycle_v1 import LifecycleEvent
from services.notify.domain import (
    Cap,
    Policy,
    QuietHours,
    Recipient,
    RunEntered,
    Send,
    Suppress,
    notification_id,
)
from services.notify.domain.conditions import matches
from services.notify.domain.policy import in_quiet_hours, zone
from tests.unit.notify.factory import (
    CATALOG,
    CUSTOMER,
    Sim,
    cart,
    consent,
    erased,
    lapsed,
    order,
    recipient,
    referral,
    segment,
    signed_up,
)

PROPERTIES = settings(max_examples=150, deadline=None)
START = datetime(2026, 3, 5, tzinfo=UTC)  # New York changes clocks on the 8th, Paris the 29th
GRID = timedelta(minutes=30)
ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
    "UTC",
    None,
    "Not/AZone",
)
DELAYS = tuple(
    timedelta(minutes=m) for m in (0, 0, 0, 1, 30, 3 * 60, 20 * 60, 47 * 60, 3 * 24 * 60)
)
SEGMENTS = (
    ("churn_risk", "high", "up"),
    ("value_tier", "potential", "up"),
    ("value_tier", "most_valuable", "up"),
    ("ladder_step", "client", "up"),
    ("ladder_step", "advocate", "up"),
    ("ladder_step", "customer", "down"),
)


@st.composite
def events(draw: st.DrawFn, index: int) -> LifecycleEvent:
    at = START + GRID * draw(st.integers(min_value=0, max_value=48 * 21))
    kind = draw(
        st.sampled_from(
            (
                "cart",
                "cart",
                "cart",
                "order",
                "order",
                "consent",
                "signed_up",
                "lapsed",
                "segment",
                "referral",
            )
        )
    )
    if kind == "cart":
        return cart(at, draw(st.integers(0, 2)), event_id=f"cart-{index}")
    if kind == "order":
        historical = draw(st.integers(0, 5)) == 0
        when = at - timedelta(days=40) if historical else at
        return order(when, f"o-{index}", historical=historical)
    if kind == "consent":
        status = draw(st.sampled_from(("opted_in", "opted_out")))
        return consent(at, status, event_id=f"consent-{index}")
    if kind == "signed_up":
        return signed_up(at).model_copy(update={"event_id": f"signed-up-{index}"})
    if kind == "lapsed":
        return lapsed(at).model_copy(update={"event_id": f"lapsed-{index}"})
    if kind == "segment":
        dimension, to, direction = draw(st.sampled_from(SEGMENTS))
        event = segment(at, dimension, to, direction)
        return event.model_copy(update={"event_id": f"segment-{index}"})
    return referral(at, f"r-{draw(st.integers(0, 3))}").model_copy(
        update={"event_id": f"referral-{index}"}
    )


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[datetime, LifecycleEvent]]:
    """(arrival, event), in arrival order; some events twice, an erasure now and then."""
    count = draw(st.integers(min_value=1, max_value=22))
    out: list[tuple[datetime, LifecycleEvent]] = []
    for index in range(count):
        event = draw(events(index))
        for _ in range(draw(st.sampled_from((1, 1, 1, 2)))):  # redelivered now and then
            out.append((event.occurred_at + draw(st.sampled_from(DELAYS)), event))
    if draw(st.integers(0, 9)) == 0:
        at = START + GRID * draw(st.integers(min_value=0, max_value=48 * 21))
        out.append((at, erased(at)))
    # Events never arrive before they happen; historical orders arrive now, as imports do.
    out = [(max(arrival, START), event) for arrival, event in out]
    return sorted(out, key=lambda pair: pair[0])


@st.composite
def recipients(draw: st.DrawFn) -> Recipient:
    return recipient(
        email=draw(st.sampled_from(("ann@example.com", "ann@example.com", None))),
        consent=draw(st.sampled_from(("opted_in", "opted_in", "opted_out", "unknown"))),
        consent_at=draw(
            st.sampled_from((START - timedelta(days=1), START + timedelta(days=4), None))
        ),
        timezone=draw(st.sampled_from(ZONES)),
        suppressed=draw(st.sampled_from((None, None, None, "hard_bounce"))),
        points=draw(st.sampled_from((0, 600))),
        recommendations=draw(st.sampled_from(((), ("p-1",)))),
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    if draw(st.booleans()):
        return Policy()
    caps = tuple(
        Cap(draw(st.integers(1, 3)), timedelta(hours=draw(st.integers(1, 24 * 7))))
        for _ in range(draw(st.integers(0, 2)))
    )
    quiet = None
    if draw(st.booleans()):
        start = time(draw(st.integers(0, 23)), draw(st.sampled_from((0, 30))))
        end = time(draw(st.integers(0, 23)), draw(st.sampled_from((0, 30))))
        quiet = None if start == end else QuietHours(start, end)
    default = draw(st.sampled_from(("UTC", "Europe/Paris", "Pacific/Auckland")))
    return Policy(caps=caps, quiet_hours=quiet, default_timezone=default)


def _simulate(
    history: list[tuple[datetime, LifecycleEvent]],
    person: Recipient,
    policy: Policy,
    lateness: timedelta,
) -> Sim:
    sim = Sim(recipient=person, policy=policy, lateness=lateness)
    for arrival, event in history:
        sim.deliver(event, arrival)
    sim.run_until(history[-1][0] + timedelta(days=45))
    return sim


def _erasure(sim: Sim) -> tuple[int, datetime] | None:
    """(the call that delivered the erasure, its time), if one was."""
    for call, event in sim.delivered:
        if event.type == "customer_erased":
            return call, event.occurred_at
    return None


def _consent_at(sim: Sim, call: int) -> str:
    """The latest consent statement known at a call, by event time; opt-out wins a tie. After
    an erasure, statements from before it belong to the erased customer and are forgotten."""
    r = sim.recipient
    erasure = _erasure(sim)
    known: list[tuple[datetime, bool, str]] = []
    if r.consent != "unknown" or r.consent_at is not None:
        known.append((r.consent_at or EARLIEST, r.consent == "opted_out", r.consent))
    for delivered_at, event in sim.delivered:
        if delivered_at <= call and event.type == "consent_changed":
            if erasure is not None and erasure[0] < call and event.occurred_at <= erasure[1]:
                continue
            known.append((event.occurred_at, event.status == "opted_out", event.status))
    return max(known)[2] if known else "unknown"


def _ends_run(journey_id: str, trigger: LifecycleEvent, other: LifecycleEvent) -> bool:
    """`other` ends a run of the journey started by `trigger`: its goal, an exit_when, or a
    wait_until at the start of the journey whose match exits."""
    journey = CATALOG.journeys[journey_id]
    if other.event_id == trigger.event_id or other.occurred_at < trigger.occurred_at:
        return False
    ends = [*journey.exit_when, *([journey.goal] if journey.goal else [])]
    first = journey.steps[0]
    if (
        isinstance(first, WaitUntilStep)
        and first.wait_until.on_match == "exit"
        and first.wait_until.event is not None
    ):
        ends.append(first.wait_until.event)
    roots: dict[str, Any] = {"event": other.model_dump(mode="json")}
    return any(matches(m, other.type, roots) for m in ends)


@PROPERTIES
@given(
    history=deliveries(),
    person=recipients(),
    policy=policies(),
    lateness=st.sampled_from((timedelta(0), timedelta(minutes=5), timedelta(hours=2))),
)
def test_the_engine_keeps_its_promises(
    history: list[tuple[datetime, LifecycleEvent]],
    person: Recipient,
    policy: Policy,
    lateness: timedelta,
) -> None:
    sim = _simulate(history, person, policy, lateness)
    by_id = {event.event_id: event for _, event in sim.delivered}
    local_zone: ZoneInfo = zone(person.timezone, policy.default_timezone)
    erasure = _erasure(sim)

    # One action per notification id, one run per journey and trigger event.
    ids = Counter(a.notification_id for _, a in sim.log if isinstance(a, Send | Suppress))
    assert all(count == 1 for count in ids.values()), ids.most_common(3)
    entered = Counter(
        (a.journey, a.trigger_event_id) for _, a in sim.log if isinstance(a, RunEntered)
    )
    assert all(count == 1 for count in entered.values()), entered.most_common(3)

    marketing: defaultdict[datetime | None, list[datetime]] = defaultdict(list)
    for (now, action), call in zip(sim.log, sim.log_calls, strict=True):
        if isinstance(action, RunEntered):
            trigger = by_id[action.trigger_event_id]
            assert not getattr(trigger, "historical", False)
            age = CATALOG.journeys[action.journey].max_trigger_age
            assert now - trigger.occurred_at <= age, (action, now)
            continue
        if not isinstance(action, Send):
            continue
        send = action
        assert person.email is not None
        assert send.to == person.email
        assert person.suppressed is None
        trigger = by_id[send.trigger_event_id]
        if erasure is not None and call > erasure[0]:  # only a new life after the erasure
            assert trigger.occurred_at > erasure[1], (send, now)
        if send.kind == "marketing":
            assert _consent_at(sim, call) == "opted_in", (send, now)
            assert not in_quiet_hours(now, local_zone, policy.quiet_hours), (send, now)
        for delivered_call, other in sim.delivered:
            if delivered_call <= call:
                assert not _ends_run(send.journey, trigger, other), (send, other, now)
        life = erasure[1] if erasure is not None and call > erasure[0] else None
        run_key = send.context["run_key"]
        expected = notification_id(send.journey, CUSTOMER, run_key, send.step, life)
        assert send.notification_id == expected
        # An erasure forgets the customer, send times included: caps count within a life.
        if send.kind == "marketing":
            marketing[life].append(now)

    for times in marketing.values():
        times.sort()
        for cap in policy.caps:
            for first, last in zip(times, times[cap.count :], strict=False):
                assert last - first >= cap.window, (cap, first, last)


@PROPERTIES
@given(history=deliveries(), lateness=st.sampled_from((timedelta(0), timedelta(hours=2))))
def test_without_consent_there_is_no_marketing_and_every_skip_says_why(
    history: list[tuple[datetime, LifecycleEvent]], lateness: timedelta
) -> None:
    person = recipient(consent="opted_out", consent_at=START + timedelta(days=30))
    sim = _simulate(history, person, Policy(), lateness)
    assert all(send.kind == "transactional" for _, send in sim.sends())
    for _, suppress in sim.suppressions():
        assert suppress.kind == "marketing"
        assert suppress.reason in ("unsubscribed", "frequency_cap")
        assert suppress.record().reason == suppress.reason

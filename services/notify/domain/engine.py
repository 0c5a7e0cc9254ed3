"""The journey engine: (catalog, state, recipient, input, now) -> (new state, actions).

Pure: no clock, no I/O. The shell calls

- `on_event` for each lifecycle.v1 event of the customer (redelivery is harmless);
- `on_due` when the customer's wake-up (`Decision.next_wake`) is due, and `on_update` when
  their profile or scores changed (a wait_until on a condition may now hold);
- `on_merge` when another customer's state was merged into this one (profiles_merged);

stores `Decision.state`, acts on `Decision.actions` in order, and reschedules the wake-up.

Rules (docs/journeys.md has the reasoning):

- Times are event times. "After the trigger" compares `occurred_at`s, never arrival order; a
  run's first step begins at its trigger's `occurred_at`, so a late trigger whose wait has
  elapsed goes on at once, and an exit event that happened at or after the trigger ends the
  run whenever it arrives (before the trigger, too: facts are kept).
- Exits win: before every step, and so before every send, the run's goal and exit_when are
  checked against every fact known at that moment.
- At a send: a customer whose profile has not reached notify yet (lifecycle.v1 and profiles.v1
  are two topics) is looked at again shortly, for up to `Policy.profile_wait`; marketing waits
  out quiet hours (the run stays on the send step); then no address,
  a suppressed address, missing marketing consent or a full frequency cap each give a
  `Suppress` with its reason and the run goes on to its next step. Transactional email ignores
  consent, caps and quiet hours, never a suppressed address. An erased customer gets nothing:
  every run ends and the state becomes a tombstone; events that occurred before the erasure
  (still in flight) are ignored, later ones are a new customer life.
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas._types import EARLIEST
from schemas.journey_v1 import (
    ConditionSpec,
    ConditionStep,
    EventMatch,
    Journey,
    SendStep,
    WaitStep,
    WaitUntilStep,
)
from schemas.topics.lifecycle_v1 import LifecycleEvent
from schemas.topics.notifications_v1 import SuppressionReason
from schemas.topics.profiles_v1 import ConsentStatus
from services.notify.domain.actions import (
    Action,
    Decision,
    ExitReason,
    RunEntered,
    RunExited,
    Send,
    Suppress,
    notification_id,
)
from services.notify.domain.catalog import Catalog
from services.notify.domain.conditions import Roots, all_hold, holds, matches
from services.notify.domain.policy import (
    Policy,
    cap_exceeded,
    next_wall_time,
    quiet_until,
    zone,
)
from services.notify.domain.recipient import Recipient
from services.notify.domain.state import ConsentFact, CustomerState, Entry, Fact, Run

DEFAULT_POLICY = Policy()


PROFILE_RETRY = timedelta(seconds=5)
# How often a run held by a paused journey is looked at again: how soon after a resume it goes on.
PAUSED_RECHECK = timedelta(seconds=30)


def on_event(
    catalog: Catalog,
    state: CustomerState,
    recipient: Recipient,
    event: LifecycleEvent,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """A lifecycle.v1 event of this customer arrived: remember it, end the runs it exits, start
    the runs it triggers, and move every run as far as `now` allows."""
    _check(recipient, now)
    if event.customer_id != recipient.customer_id:
        raise ValueError(
            f"event {event.event_id} is for customer {event.customer_id!r}, "
            f"not {recipient.customer_id!r}"
        )
    if event.type == "customer_erased":
        return _erase(state, recipient, now, event.occurred_at)
    if recipient.erased:
        return _erase(state, recipient, now, now)
    work = _Work(catalog, state, recipient, now, policy)
    # An event from before an erasure is the erased customer's past, still in flight: ignored.
    if state.erased_at is None or event.occurred_at > state.erased_at:
        payload = event.model_dump(mode="json")  # once: facts and triggers read it
        work.learn(event, payload)
        work.enter(event, payload)
    work.advance()
    return work.decision()


def on_due(
    catalog: Catalog,
    state: CustomerState,
    recipient: Recipient,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """The customer's wake-up is due (or late): move every run as far as `now` allows."""
    _check(recipient, now)
    if recipient.erased:
        return _erase(state, recipient, now, now)
    work = _Work(catalog, state, recipient, now, policy)
    work.advance()
    return work.decision()


def on_update(
    catalog: Catalog,
    state: CustomerState,
    recipient: Recipient,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """The customer's profile or scores changed: a wait_until on a condition may hold now.
    The same as `on_due`; a run that is not due stays where it is."""
    return on_due(catalog, state, recipient, now, policy)


def on_merge(
    catalog: Catalog,
    state: CustomerState,
    absorbed: Sequence[CustomerState],
    recipient: Recipient,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """Customers merged into this one (profiles_merged): their states join this one.

    Facts, entries and marketing send times are united (so caps and re-entry hold across the
    merge); consent keeps the latest. A merged run goes on under this customer unless this
    customer already has a run of that journey that re-entry would have refused (same key, or
    any run of a once or cooldown journey): that one ends with reason `merged`. Notification ids
    of later sends use this customer's id; steps already sent are never sent again.
    """
    _check(recipient, now)
    if recipient.erased:
        return _erase(state, recipient, now, now)
    work = _Work(catalog, state, recipient, now, policy)
    for other in absorbed:
        work.absorb(other)
    work.advance()
    return work.decision()


def _check(recipient: Recipient, now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not recipient.customer_id:
        raise ValueError("the recipient needs a customer id")


def _erase(
    state: CustomerState, recipient: Recipient, now: datetime, erased_at: datetime
) -> Decision:
    """Erased: every run ends, nothing is sent, nothing is kept but a tombstone (the erasure's
    time), so that events of the customer's past still in flight change nothing. Events that
    occur after it are a new customer life, as profile folds them."""
    actions: list[Action] = [
        RunExited(
            customer_id=recipient.customer_id,
            journey=run.journey,
            run_key=run.run_key,
            trigger_event_id=run.trigger_event_id,
            reason="erased",
            step=run.step,
            at=now,
        )
        for run in state.runs
    ]
    if state.erased_at is not None:
        erased_at = max(erased_at, state.erased_at)
    return Decision(state=CustomerState(erased_at=erased_at), actions=tuple(actions))


# Fields of an event kept in a fact: single values (where-conditions on events read only
# those), less the customer id, which a merge would make misleading.
def _scalars(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in payload.items()
        if name != "customer_id" and (value is None or isinstance(value, str | int | float | bool))
    }


def _run_key(journey: Journey, key: str, event_id: str) -> str:
    """What a run's notification ids are made of, besides journey, customer and step: the key
    (once per key), "once" (once: one run ever), else the trigger event (cooldown)."""
    policy = journey.re_entry.policy
    if policy == "once_per_key":
        return key
    return "once" if policy == "once" else event_id


def _key_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


class _Work:
    """One call's working copy. Mutable inside the call only; `decision()` freezes it."""

    def __init__(
        self,
        catalog: Catalog,
        state: CustomerState,
        recipient: Recipient,
        now: datetime,
        policy: Policy,
    ) -> None:
        self.catalog = catalog
        self.recipient = recipient
        self.now = now.astimezone(UTC)
        self.policy = policy
        self.runs = list(state.runs)
        self.entries = list(state.entries)
        self.facts = list(state.facts)
        self.fact_ids = {fact.event_id for fact in self.facts}
        self.sends = list(state.marketing_sends)
        self.consent = state.consent
        self.erased_at = state.erased_at
        self.actions: list[Action] = []
        self.zone = zone(recipient.timezone, policy.default_timezone)

    # Inputs

    def learn(self, event: LifecycleEvent, payload: dict[str, Any]) -> None:
        """Keep what later decisions may need: consent, and the facts journeys read
        (`payload`: the event as JSON)."""
        if event.type == "consent_changed":
            fact = ConsentFact(status=event.status, at=event.occurred_at, event_id=event.event_id)
            if self.consent is None or fact.key > self.consent.key:
                self.consent = fact
        if event.type in self.catalog.fact_types and event.event_id not in self.fact_ids:
            self.facts.append(
                Fact(
                    type=event.type,
                    event_id=event.event_id,
                    at=event.occurred_at,
                    fields=_scalars(payload),
                )
            )
            self.fact_ids.add(event.event_id)

    def enter(self, event: LifecycleEvent, payload: dict[str, Any]) -> None:
        """Start a run of every journey this event triggers, as re-entry allows (`payload`:
        the event as JSON)."""
        journeys = self.catalog.triggered_by.get(event.type, ())
        if not journeys:
            return
        if getattr(event, "historical", False):  # a past order: history, news for no journey
            return
        roots = self._roots(event=payload)
        for journey in journeys:
            if not journey.enabled or journey.id in self.catalog.paused:
                continue
            if self.now - event.occurred_at > journey.max_trigger_age:
                continue
            if not any(matches(t, event.type, roots) for t in journey.triggers):
                continue
            key = self._entry_key(journey, payload)
            run_key = _run_key(journey, key, event.event_id)
            if self._refused(journey, key, run_key, event.event_id, event.occurred_at):
                continue
            self.entries.append(
                Entry(
                    journey=journey.id,
                    key=key,
                    trigger_at=event.occurred_at,
                    event_id=event.event_id,
                )
            )
            self.runs.append(
                Run(
                    journey=journey.id,
                    run_key=run_key,
                    trigger_event_id=event.event_id,
                    trigger_type=event.type,
                    trigger_at=event.occurred_at,
                    trigger=payload,
                    entered_at=self.now,
                    step=0,
                    since=event.occurred_at,
                    wake_at=event.occurred_at,
                )
            )
            self.actions.append(
                RunEntered(
                    customer_id=self.recipient.customer_id,
                    journey=journey.id,
                    run_key=run_key,
                    trigger_event_id=event.event_id,
                    at=self.now,
                )
            )

    def _entry_key(self, journey: Journey, payload: dict[str, Any]) -> str:
        """The value re-entry is decided by: the key field's value (the event id when the
        field is null), or "" for once and cooldown."""
        field = journey.re_entry.key
        if field is None:
            return ""
        value = payload.get(field)
        return payload["event_id"] if value is None else _key_text(value)

    def _refused(
        self,
        journey: Journey,
        key: str,
        run_key: str,
        event_id: str,
        trigger_at: datetime,
        runs: Sequence[Run] | None = None,
        entries: Sequence[Entry] | None = None,
    ) -> bool:
        """Would re-entry refuse this trigger, given these runs and this memory?"""
        for run in self.runs if runs is None else runs:
            if run.journey == journey.id and (
                run.run_key == run_key or run.trigger_event_id == event_id
            ):
                return True
        policy = journey.re_entry
        for entry in self.entries if entries is None else entries:
            if entry.journey != journey.id:
                continue
            if entry.event_id == event_id:  # the same trigger, redelivered
                return True
            if policy.policy == "once":
                return True
            if policy.policy == "once_per_key" and entry.key == key:
                return True
            if (
                policy.policy == "cooldown"
                and policy.cooldown is not None
                and abs(trigger_at - entry.trigger_at) < policy.cooldown
            ):
                return True
        return False

    def absorb(self, other: CustomerState) -> None:
        """Join a merged-away customer's state to this one (see on_merge). A merged-away
        tombstone brings nothing: what it erased stays erased."""
        if other.erased_at is not None:
            return
        my_runs, my_entries = list(self.runs), list(self.entries)
        for run in other.runs:
            journey = self.catalog.journeys.get(run.journey)
            key = run.run_key if journey is not None and journey.re_entry.key else ""
            clash = journey is not None and (
                self._refused(
                    journey,
                    key,
                    run.run_key,
                    run.trigger_event_id,
                    run.trigger_at,
                    my_runs,
                    my_entries,
                )
                or (
                    journey.re_entry.policy in ("once", "cooldown")
                    and any(mine.journey == run.journey for mine in my_runs)
                )
            )
            if clash:
                self._exit(run, "merged")
            else:
                self.runs.append(run)
        for fact in other.facts:
            if fact.event_id not in self.fact_ids:
                self.facts.append(fact)
                self.fact_ids.add(fact.event_id)
        known = set(self.entries)
        self.entries.extend(e for e in other.entries if e not in known)
        self.sends.extend(other.marketing_sends)
        if other.consent is not None and (
            self.consent is None or other.consent.key > self.consent.key
        ):
            self.consent = other.consent

    # Moving runs

    def advance(self) -> None:
        # Earliest due first: when two sends compete for one cap slot, the older intent wins.
        order = sorted(self.runs, key=lambda r: (r.wake_at, r.trigger_at, r.journey, r.run_key))
        self.runs = []
        for run in order:
            moved = self._advance(run)
            if moved is not None:
                self.runs.append(moved)

    def _advance(self, run: Run) -> Run | None:
        journey = self.catalog.journeys.get(run.journey)
        if journey is None or not journey.enabled:
            self._exit(run, "disabled")
            return None
        if journey.id in self.catalog.paused:
            # Held where it is; looked at again a while later, and goes on once resumed.
            return replace(run, wake_at=max(run.wake_at, self.now + PAUSED_RECHECK))
        for _ in range(len(journey.steps) + 1):
            ended = self._outcome(journey, run)
            if ended is not None:
                self._exit(run, ended)
                return None
            if run.step >= len(journey.steps):
                self._exit(run, "completed")
                return None
            step = journey.steps[run.step]
            if isinstance(step, WaitStep):
                spec = step.wait
                if spec.duration is not None:
                    due = run.since + spec.duration
                else:
                    assert spec.until_local_time is not None
                    due = next_wall_time(run.since, spec.until_local_time, self.zone)
                if due > self.now:
                    return replace(run, wake_at=due)
                run = replace(run, step=run.step + 1, since=due)
            elif isinstance(step, WaitUntilStep):
                wait = step.wait_until
                matched = self._wait_matched(wait.event, wait.condition, run)
                if matched is not None:
                    if wait.on_match == "exit":
                        self._exit(run, "exited")
                        return None
                    run = replace(run, step=run.step + 1, since=max(run.since, matched))
                    continue
                deadline = run.since + wait.timeout
                if deadline > self.now:
                    return replace(run, wake_at=deadline)
                if wait.on_timeout == "exit":
                    self._exit(run, "timeout_exit")
                    return None
                run = replace(run, step=run.step + 1, since=deadline)
            elif isinstance(step, ConditionStep):
                if not self._holds(step.condition, run):
                    self._exit(run, "condition_failed")
                    return None
                run = replace(run, step=run.step + 1)
            else:
                assert isinstance(step, SendStep)
                if run.since > self.now:  # a trigger stamped in the future: not yet
                    return replace(run, wake_at=run.since)
                later = self._send(journey, run, step)
                if later is not None:
                    return replace(run, wake_at=later)
                run = replace(run, step=run.step + 1, since=self.now)
        raise AssertionError("unreachable: every pass moves the run a step or returns")

    def _outcome(self, journey: Journey, run: Run) -> ExitReason | None:
        """Converted or exited by the earliest fact, at or after the trigger (event time), that
        reaches the goal or an exit_when; the goal wins a tie. Equal times count as after:
        when in doubt, do not email."""
        best: tuple[datetime, int, ExitReason] | None = None
        for fact in self.facts:
            if fact.event_id == run.trigger_event_id or fact.at < run.trigger_at:
                continue
            if best is not None and fact.at > best[0]:
                continue
            roots = self._fact_roots(fact)
            if journey.goal is not None and matches(journey.goal, fact.type, roots):
                candidate: tuple[datetime, int, ExitReason] = (fact.at, 0, "converted")
            elif any(matches(m, fact.type, roots) for m in journey.exit_when):
                candidate = (fact.at, 1, "exited")
            else:
                continue
            if best is None or candidate < best:
                best = candidate
        return None if best is None else best[2]

    def _wait_matched(
        self, event: EventMatch | None, condition: ConditionSpec | None, run: Run
    ) -> datetime | None:
        """When a wait_until was met: the earliest matching fact at or after the step began,
        or now if its condition holds; None when it was not (yet)."""
        if event is not None:
            times = [
                fact.at
                for fact in self.facts
                if fact.event_id != run.trigger_event_id
                and fact.at >= run.since
                and matches(event, fact.type, self._fact_roots(fact))
            ]
            return min(times, default=None)
        assert condition is not None
        return self.now if self._holds(condition, run) else None

    def _send(self, journey: Journey, run: Run, step: SendStep) -> datetime | None:
        """Send or suppress now (None), or the moment a marketing send may go (quiet hours)."""
        kind = step.send.kind or journey.kind
        marketing = kind == "marketing"
        if marketing:
            later = quiet_until(self.now, self.zone, self.policy.quiet_hours)
            if later is not None:
                return later
        recipient = self.recipient
        if not recipient.known and self.now - run.entered_at < self.policy.profile_wait:
            # The trigger came on lifecycle.v1 before the profile reached notify on profiles.v1
            # (two topics): look again shortly rather than decide on an empty profile.
            return self.now + PROFILE_RETRY
        nid = notification_id(
            journey.id, recipient.customer_id, run.run_key, run.step, self.erased_at
        )
        template = step.send.template
        reason: SuppressionReason | None = None
        detail: str | None = None
        if recipient.email is None:
            reason = "no_email_address"
        elif recipient.suppressed is not None:
            reason, detail = "suppressed_address", recipient.suppressed
        elif marketing:
            consent = self._consent()
            if consent != "opted_in":
                reason = "unsubscribed" if consent == "opted_out" else "no_consent"
            else:
                cap = cap_exceeded(self.sends, self.now, self.policy.caps)
                if cap is not None:
                    reason, detail = "frequency_cap", str(cap)
        if reason is not None or recipient.email is None:
            self.actions.append(
                Suppress(
                    notification_id=nid,
                    customer_id=recipient.customer_id,
                    journey=journey.id,
                    step=run.step,
                    template=template,
                    kind=kind,
                    trigger_event_id=run.trigger_event_id,
                    reason=reason or "no_email_address",
                    detail=detail,
                    at=self.now,
                )
            )
            return None
        if marketing:
            self.sends.append(self.now)
        self.actions.append(
            Send(
                notification_id=nid,
                customer_id=recipient.customer_id,
                journey=journey.id,
                step=run.step,
                template=template,
                kind=kind,
                trigger_event_id=run.trigger_event_id,
                to=recipient.email,
                tracking=journey.tracking,
                context={"journey": journey.id, "run_key": run.run_key, "trigger": run.trigger},
            )
        )
        return None

    def _consent(self) -> ConsentStatus:
        """The latest consent statement by event time: the profile's or a consent_changed
        event's, an opt-out winning a tie."""
        r = self.recipient
        candidates: list[tuple[datetime, bool, ConsentStatus]] = []
        if r.consent != "unknown" or r.consent_at is not None:
            at = r.consent_at or EARLIEST
            candidates.append((at, r.consent == "opted_out", r.consent))
        if self.consent is not None:
            c = self.consent
            candidates.append((c.at, c.status == "opted_out", c.status))
        return max(candidates)[2] if candidates else "unknown"

    def _exit(self, run: Run, reason: ExitReason) -> None:
        self.actions.append(
            RunExited(
                customer_id=self.recipient.customer_id,
                journey=run.journey,
                run_key=run.run_key,
                trigger_event_id=run.trigger_event_id,
                reason=reason,
                step=run.step,
                at=self.now,
            )
        )

    def _holds(self, spec: ConditionSpec, run: Run) -> bool:
        roots = self._roots(trigger=run.trigger)
        if spec.all is not None:
            return all_hold(spec.all, roots)
        return any(holds(c, roots) for c in spec.any or ())

    def _roots(self, **more: Any) -> Roots:
        return {"profile": self.recipient.profile, "scores": self.recipient.scores, **more}

    @staticmethod
    def _fact_roots(fact: Fact) -> Roots:
        return {"event": fact.fields}

    # The result

    def decision(self) -> Decision:
        now = self.now
        retention = max(self.policy.fact_retention, self.catalog.max_trigger_age)
        facts = sorted(
            (f for f in self.facts if f.at >= now - retention),
            key=lambda f: (f.at, f.event_id),
        )
        # Bounded per type, newest kept: a customer editing a cart all month stays small.
        kept: list[Fact] = []
        per_type: dict[str, int] = {}
        for fact in reversed(facts):
            count = per_type.get(fact.type, 0)
            if count < self.policy.max_facts_per_type:
                kept.append(fact)
                per_type[fact.type] = count + 1
        horizon = self.policy.cap_horizon
        state = CustomerState(
            runs=tuple(sorted(self.runs, key=lambda r: (r.trigger_at, r.journey, r.run_key))),
            entries=tuple(
                sorted(
                    _live_entries(self.entries, self.catalog, now),
                    key=lambda e: (e.journey, e.trigger_at, e.key, e.event_id),
                )
            ),
            facts=tuple(reversed(kept)),
            marketing_sends=tuple(sorted(t for t in self.sends if now - t < horizon)),
            consent=self.consent,
            erased_at=self.erased_at,
        )
        return Decision(state=state, actions=tuple(self.actions))


def _live_entries(entries: Iterable[Entry], catalog: Catalog, now: datetime) -> list[Entry]:
    """Re-entry memory that can still refuse a trigger. A trigger older than max_trigger_age is
    refused anyway, so a cooldown entry matters until trigger_at + cooldown + max_trigger_age;
    a once_per_key entry for forget_after (forever without it); a once entry forever. Entries
    of a journey no longer in the catalog are kept: it may come back."""
    out: list[Entry] = []
    seen: set[Entry] = set()
    for entry in entries:
        if entry in seen:
            continue
        seen.add(entry)
        journey = catalog.journeys.get(entry.journey)
        if journey is not None:
            policy = journey.re_entry
            until: datetime | None = None
            if policy.policy == "cooldown" and policy.cooldown is not None:
                until = entry.trigger_at + policy.cooldown + journey.max_trigger_age
            elif policy.forget_after is not None:
                until = entry.trigger_at + policy.forget_after
            if until is not None and until < now:
                continue
        out.append(entry)
    return out

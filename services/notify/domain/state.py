"""One customer's journey state: what the shell stores as JSON per customer, between calls.

- `runs`: the journeys the customer is in, each at a step, with the moment it next needs
  attention (`wake_at`; the shell's wake-up table holds the earliest, `next_wake`);
- `entries`: re-entry memory, one per run entered (pruned once it can no longer refuse one);
- `facts`: recent lifecycle events some journey's exit_when, goal or wait_until reads, by event
  time, so a trigger arriving after the order that ends it is recognised;
- `marketing_sends`: when marketing emails went, inside the longest cap window;
- `consent`: the latest consent_changed seen on lifecycle.v1 (by event time), which may be newer
  than the profile copy the shell holds;
- `erased_at`: set by an erasure, when everything else is dropped: the tombstone that makes
  events of the erased customer's past, still in flight, change nothing (no personal data).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.topics.profiles_v1 import ConsentStatus

# Bumped when the stored JSON changes shape; from_json reads every earlier version it knows.
JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class Run:
    """A customer's run through one journey."""

    journey: str
    run_key: str
    """The re-entry key's value (once_per_key), "once" (once), else the trigger event id; part
    of every notification id of the run."""
    trigger_event_id: str
    trigger_type: str
    trigger_at: datetime
    trigger: Mapping[str, Any]
    """The trigger event's JSON payload: for trigger.* conditions and the templates."""
    entered_at: datetime
    step: int
    since: datetime
    """When the current step began (event time: a trigger's first step begins at its
    occurred_at, so a late trigger whose wait has elapsed goes on at once)."""
    wake_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """A run entered: refuses a redelivered trigger, and re-entry as the policy says."""

    journey: str
    key: str
    trigger_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class Fact:
    """A lifecycle event kept for exit, goal and wait_until checks: its single-value fields."""

    type: str
    event_id: str
    at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConsentFact:
    status: ConsentStatus
    at: datetime
    event_id: str

    @property
    def key(self) -> tuple[datetime, bool, str]:
        # At the same instant an opt-out beats an opt-in: when in doubt, do not email.
        return (self.at, self.status == "opted_out", self.event_id)


@dataclass(frozen=True, slots=True)
class CustomerState:
    runs: tuple[Run, ...] = ()
    entries: tuple[Entry, ...] = ()
    facts: tuple[Fact, ...] = ()
    marketing_sends: tuple[datetime, ...] = ()
    consent: ConsentFact | None = None
    erased_at: datetime | None = None

    @property
    def next_wake(self) -> datetime | None:
        """When the shell must call `on_due` next, at the latest (None: no run waits)."""
        return min((run.wake_at for run in self.runs), default=None)

    @property
    def is_empty(self) -> bool:
        """Nothing worth storing: the shell may delete the customer's row. A tombstone is not
        empty; the shell may drop it once lifecycle.v1 can hold nothing older (30 days)."""
        return self == CustomerState()

    def to_json(self) -> dict[str, Any]:
        return {
            "v": JSON_VERSION,
            "runs": [_run_out(run) for run in self.runs],
            "entries": [
                {"journey": e.journey, "key": e.key, "at": _t(e.trigger_at), "id": e.event_id}
                for e in self.entries
            ],
            "facts": [
                {"type": f.type, "id": f.event_id, "at": _t(f.at), "fields": dict(f.fields)}
                for f in self.facts
            ],
            "marketing_sends": [_t(at) for at in self.marketing_sends],
            "consent": None
            if self.consent is None
            else {
                "status": self.consent.status,
                "at": _t(self.consent.at),
                "id": self.consent.event_id,
            },
            "erased_at": None if self.erased_at is None else _t(self.erased_at),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "CustomerState":
        version = raw.get("v")
        if version != JSON_VERSION:
            raise ValueError(f"unknown notify state version {version!r}")
        consent = raw.get("consent")
        erased_at = raw.get("erased_at")
        return cls(
            runs=tuple(_run_in(run) for run in raw.get("runs") or ()),
            entries=tuple(
                Entry(journey=e["journey"], key=e["key"], trigger_at=_dt(e["at"]), event_id=e["id"])
                for e in raw.get("entries") or ()
            ),
            facts=tuple(
                Fact(
                    type=f["type"], event_id=f["id"], at=_dt(f["at"]), fields=f.get("fields") or {}
                )
                for f in raw.get("facts") or ()
            ),
            marketing_sends=tuple(_dt(at) for at in raw.get("marketing_sends") or ()),
            consent=None
            if consent is None
            else ConsentFact(
                status=consent["status"], at=_dt(consent["at"]), event_id=consent["id"]
            ),
            erased_at=None if erased_at is None else _dt(erased_at),
        )


def _t(value: datetime) -> str:
    return value.isoformat()


def _dt(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


def _run_out(run: Run) -> dict[str, Any]:
    return {
        "journey": run.journey,
        "run_key": run.run_key,
        "trigger_event_id": run.trigger_event_id,
        "trigger_type": run.trigger_type,
        "trigger_at": _t(run.trigger_at),
        "trigger": dict(run.trigger),
        "entered_at": _t(run.entered_at),
        "step": run.step,
        "since": _t(run.since),
        "wake_at": _t(run.wake_at),
    }


def _run_in(raw: Mapping[str, Any]) -> Run:
    return Run(
        journey=raw["journey"],
        run_key=raw["run_key"],
        trigger_event_id=raw["trigger_event_id"],
        trigger_type=raw["trigger_type"],
        trigger_at=_dt(raw["trigger_at"]),
        trigger=raw.get("trigger") or {},
        entered_at=_dt(raw["entered_at"]),
        step=int(raw["step"]),
        since=_dt(raw["since"]),
        wake_at=_dt(raw["wake_at"]),
    )

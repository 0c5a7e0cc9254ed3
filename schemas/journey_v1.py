"""journey.v1: a lifecycle email journey, described as data.

One file per journey (YAML or JSON, in `services/notify/journeys/`) validates against `Journey`;
editors can validate it too, against `schemas/jsonschema/journey.v1.json`. The language and the
engine's semantics are documented in `docs/journeys.md`.

A journey is a trigger (a lifecycle.v1 event type, optionally filtered), steps (`wait`,
`wait_until`, `condition`, `send`), `exit_when` events that end a customer's run, an optional
`goal` that ends it as converted, and a re-entry policy. Unknown keys are refused, and so is a
condition on a field that does not exist where it is used: a typo fails at load time, naming the
field, never silently at send time.
"""

import re
import types
from collections.abc import Iterator, Sequence
from datetime import time, timedelta
from decimal import Decimal
from typing import (
    Annotated,
    Any,
    Literal,
    Union,
    get_args,
    get_origin,
)

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StringConstraints,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas._types import LongText, Name
from schemas.topics.lifecycle_v1 import LifecycleEvent
from schemas.topics.notifications_v1 import EmailKind
from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.scores_v1 import CustomerScores

JOURNEY_VERSION = 1
MAX_DURATION = timedelta(days=3650)
MAX_CONDITIONS = 50
MAX_STEPS = 100

# Every lifecycle.v1 type a journey may name. customer_erased is not one: erasure ends every
# run of the customer, whatever the journey says.
EventType = Literal[
    "stage_changed",
    "segment_changed",
    "first_order",
    "order_completed",
    "signed_up",
    "referral_converted",
    "cart_activity",
    "cart_abandoned",
    "consent_changed",
    "profiles_merged",
]


def _event_models() -> dict[str, type[BaseModel]]:
    union = get_args(LifecycleEvent)[0]
    out: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        (name,) = get_args(model.model_fields["type"].annotation)
        out[name] = model
    return out


ALL_EVENT_MODELS = _event_models()
EVENT_MODELS: dict[str, type[BaseModel]] = {
    name: ALL_EVENT_MODELS[name] for name in get_args(EventType)
}
"""lifecycle.v1 type -> its payload model, for the types a journey may name."""

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
TemplateId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]

# Durations: "90s", "30m", "4h", "7d", "2w", or ISO 8601 with days and time ("P7D", "PT4H30M").
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_COMPACT = re.compile(r"^([0-9]{1,9})([smhdw])$")
_ISO = re.compile(
    r"^P(?:([0-9]{1,4})W)?(?:([0-9]{1,5})D)?"
    r"(?:T(?:([0-9]{1,6})H)?(?:([0-9]{1,7})M)?(?:([0-9]{1,9})S)?)?$"
)
DURATION_PATTERN = r"^([0-9]+[smhdw]|P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?)$"


def _duration_error(value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        "duration",
        'a duration is text such as "30m", "4h", "7d" or ISO 8601 "PT4H"; got {value}',
        {"value": repr(value)},
    )


def parse_duration(value: Any) -> timedelta:
    """ "4h" -> 4 hours; ISO 8601 days and times ("P1DT2H") too; positive, at most ten years."""
    if isinstance(value, timedelta):
        out = value
    elif isinstance(value, str):
        text = value.strip()
        compact = _COMPACT.match(text)
        iso = _ISO.match(text)
        if compact:
            out = timedelta(seconds=int(compact.group(1)) * _UNITS[compact.group(2)])
        elif iso and text not in ("P", "PT") and not text.endswith("T"):
            weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
            out = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        else:
            raise _duration_error(value)
    else:  # a bare number: seconds? days? ambiguous in a file written by hand
        raise _duration_error(value)
    if not timedelta(0) < out <= MAX_DURATION:
        raise PydanticCustomError(
            "duration_range",
            "a duration must be more than 0 and at most 3650d; got {value}",
            {"value": repr(value)},
        )
    return out


def format_duration(value: timedelta) -> str:
    """The compact form parse_duration reads: the largest unit that divides it exactly."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):  # days read better than weeks: "14d", not "2w"
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": 'e.g. "30m", "4h", "7d", "2w", or ISO 8601 such as "PT4H"',
        }
    ),
]

_LOCAL_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_local_time(value: Any) -> time:
    """ "HH:MM" on a 24-hour clock -> a wall-clock time."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 10:00 as the sexagesimal number 600.
        raise PydanticCustomError(
            "local_time",
            'a time of day is quoted text "HH:MM" (YAML reads an unquoted 10:00 as the number '
            "{value})",
            {"value": value},
        )
    match = _LOCAL_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError(
            "local_time",
            'a time of day is "HH:MM" on a 24-hour clock; got {value}',
            {"value": repr(value)},
        )
    return time(int(match.group(1)), int(match.group(2)))


LocalTime = Annotated[
    time,
    BeforeValidator(parse_local_time),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _LOCAL_TIME.pattern,
            "description": 'a wall-clock time "HH:MM" (24-hour) in the customer\'s time zone',
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "missing"]
Scalar = str | bool | int | Annotated[float, Field(allow_inf_nan=False)]
FieldPath = Annotated[
    str,
    StringConstraints(pattern=r"^(event|trigger|profile|scores)(\.[^.\s]{1,128}){1,6}$"),
]

_VALUE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
_LIST_OPS = ("in", "not_in")
_ORDER_OPS = ("gt", "gte", "lt", "lte")


class Condition(_Model):
    """A test on one field. Roots: `event.` (the event being matched, in a `where`),
    `trigger.` (the event that started the run), `profile.` (profiles.v1) and `scores.`
    (scores.v1), the latter two as they are when the test runs."""

    field: FieldPath = Field(
        description='e.g. "event.items_count", "profile.loyalty.points_balance"'
    )
    op: Op
    value: Scalar | list[Scalar] | None = Field(
        default=None,
        description="A number, text or boolean; a list for in and not_in; absent for exists "
        "and missing.",
    )

    @model_validator(mode="after")
    def _value_fits_op(self) -> "Condition":
        if self.op in ("exists", "missing"):
            if self.value is not None:
                raise PydanticCustomError("condition", "{op} takes no value", {"op": self.op})
        elif self.op in _LIST_OPS:
            if not isinstance(self.value, list) or not self.value:
                raise PydanticCustomError(
                    "condition", "{op} needs a non-empty list as value", {"op": self.op}
                )
        elif self.value is None or isinstance(self.value, list):
            raise PydanticCustomError(
                "condition",
                "{op} needs one value (use exists or missing to test for absence)",
                {"op": self.op},
            )
        elif self.op in _ORDER_OPS and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise PydanticCustomError(
                "condition", "{op} compares numbers; the value must be a number", {"op": self.op}
            )
        return self


class EventMatch(_Model):
    """A lifecycle.v1 event of a type, optionally filtered: every `where` condition must hold."""

    event: EventType
    where: tuple[Condition, ...] = Field(default=(), max_length=MAX_CONDITIONS)


class WaitSpec(_Model):
    """Wait a duration after the step starts, or until the next time of day in the customer's
    time zone (profile timezone, else the store's default)."""

    duration: Duration | None = None
    until_local_time: LocalTime | None = None

    @model_validator(mode="after")
    def _one(self) -> "WaitSpec":
        if (self.duration is None) == (self.until_local_time is None):
            raise PydanticCustomError(
                "wait", "a wait has exactly one of duration or until_local_time"
            )
        return self


class ConditionSpec(_Model):
    """All conditions hold (`all`) or at least one does (`any`)."""

    all: tuple[Condition, ...] | None = Field(default=None, max_length=MAX_CONDITIONS)
    any: tuple[Condition, ...] | None = Field(default=None, max_length=MAX_CONDITIONS)

    @model_validator(mode="after")
    def _one(self) -> "ConditionSpec":
        if (self.all is None) == (self.any is None) or not (self.all or self.any):
            raise PydanticCustomError(
                "condition_spec", "a condition has exactly one non-empty list: all or any"
            )
        return self

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self.all or self.any or ()


Branch = Literal["continue", "exit"]


class WaitUntilSpec(_Model):
    """Wait for an event (one that occurred after the step started) or for a condition on the
    profile or scores, at most `timeout`; then continue or exit, as the branch says."""

    event: EventMatch | None = None
    condition: ConditionSpec | None = None
    timeout: Duration
    on_match: Branch
    on_timeout: Branch

    @model_validator(mode="after")
    def _one(self) -> "WaitUntilSpec":
        if (self.event is None) == (self.condition is None):
            raise PydanticCustomError(
                "wait_until", "a wait_until has exactly one of event or condition"
            )
        return self


class SendSpec(_Model):
    template: TemplateId = Field(description="A template id; the notify service renders it.")
    kind: EmailKind | None = Field(default=None, description="Default: the journey's kind.")


class WaitStep(_Model):
    wait: WaitSpec


class WaitUntilStep(_Model):
    wait_until: WaitUntilSpec


class ConditionStep(_Model):
    """False: the run ends (reason condition_failed)."""

    condition: ConditionSpec


class SendStep(_Model):
    send: SendSpec


_STEP_KEYS = ("wait", "wait_until", "condition", "send")


def _step_key(value: Any) -> str | None:
    if isinstance(value, dict):
        if len(value) == 1:
            key = next(iter(value))
            return key if key in _STEP_KEYS else None
        return None
    if isinstance(value, WaitStep):
        return "wait"
    if isinstance(value, WaitUntilStep):
        return "wait_until"
    if isinstance(value, ConditionStep):
        return "condition"
    if isinstance(value, SendStep):
        return "send"
    return None


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[ConditionStep, Tag("condition")]
    | Annotated[SendStep, Tag("send")],
    Discriminator(
        _step_key,
        custom_error_type="step",
        custom_error_message="a step is a mapping with exactly one key: wait, wait_until, "
        "condition or send",
    ),
]


class ReEntry(_Model):
    """May a customer enter the journey again?

    - `once`: once ever;
    - `once_per_key`: once per value of `key`, a field of the trigger event (`order_id`,
      `cart_id`, `event_id` for every trigger event); remembered for `forget_after` after the
      trigger event's time when given (set it when a key names one event, so memory stays
      small), else forever;
    - `cooldown`: not within `cooldown` (by event time) of a trigger that entered.
    """

    policy: Literal["once", "once_per_key", "cooldown"]
    key: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,63}$")
    cooldown: Duration | None = None
    forget_after: Duration | None = None

    @model_validator(mode="after")
    def _fits_policy(self) -> "ReEntry":
        if (self.key is not None) != (self.policy == "once_per_key"):
            raise PydanticCustomError(
                "re_entry", "key is required with once_per_key, and only there"
            )
        if (self.cooldown is not None) != (self.policy == "cooldown"):
            raise PydanticCustomError(
                "re_entry", "cooldown is required with policy cooldown, and only there"
            )
        if self.forget_after is not None and self.policy != "once_per_key":
            raise PydanticCustomError("re_entry", "forget_after applies to once_per_key only")
        return self


class Journey(_Model):
    """A lifecycle email journey. See docs/journeys.md for every field and the semantics."""

    version: Literal[1] = Field(description="The journey language version.")
    id: Slug = Field(description="Stable id: in notification ids and the API. The file's name.")
    name: Name
    description: LongText = ""
    kind: EmailKind = Field(
        default="marketing", description="Default kind of its sends (marketing needs consent)."
    )
    enabled: bool = Field(default=True, description="False: no new runs; runs in flight end.")
    tracking: bool = Field(default=True, description="Open and click tracking in its emails.")
    triggers: tuple[EventMatch, ...] = Field(min_length=1, max_length=20)
    max_trigger_age: Duration = Field(
        default=timedelta(days=2),
        description="Trigger events older than this when processed are history, not news.",
    )
    re_entry: ReEntry
    exit_when: tuple[EventMatch, ...] = Field(
        default=(),
        max_length=20,
        description="An event of these that occurred after the trigger ends the run; checked "
        "on arrival and again before every send.",
    )
    goal: EventMatch | None = Field(
        default=None, description="Reaching it (after the trigger) ends the run as converted."
    )
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _coherent(self) -> "Journey":
        problems = list(_problems(self))
        if problems:
            # One per line, each naming its field: the loader reports them one by one.
            raise PydanticCustomError("journey", "{problems}", {"problems": "\n".join(problems)})
        return self

    @property
    def trigger_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.event for t in self.triggers))


# Field paths checked against the models, so a typo is refused where the journey is loaded.

FieldKind = Literal["number", "bool", "str", "literal", "datetime", "list", "object", "any"]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without Annotated and None, whether None was allowed)."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return Any, nullable
            annotation = args[0]
        else:
            return annotation, nullable


def _kind(annotation: Any) -> tuple[FieldKind, tuple[Any, ...]]:
    origin = get_origin(annotation)
    if annotation is Any:
        return "any", ()
    if origin is Literal:
        return "literal", get_args(annotation)
    if origin in (list, tuple, set, frozenset, Sequence):
        return "list", ()
    if origin is dict or annotation is dict:
        return "object", ()
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "object", ()
        if issubclass(annotation, bool):
            return "bool", ()
        if issubclass(annotation, int | float | Decimal):
            return "number", ()
        if issubclass(annotation, str):
            return "str", ()
        if annotation.__name__ == "datetime":
            return "datetime", ()
    return "any", ()


def field_kind(model: type[BaseModel], path: Sequence[str]) -> tuple[FieldKind, tuple[Any, ...]]:
    """The kind of the field at `path` in `model` (and a Literal's values); KeyError naming the
    first part that does not exist. Free-form maps (traits) accept any key below them."""
    current: Any = model
    for depth, part in enumerate(path):
        annotation, _ = _unwrap(current)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part)
            if info is None:
                raise KeyError(".".join(path[: depth + 1]))
            current = info.annotation
            continue
        kind, _ = _kind(annotation)
        if kind in ("object", "any"):  # dict[str, Any]: any key below it
            return "any", ()
        raise KeyError(".".join(path[: depth + 1]))
    return _kind(_unwrap(current)[0])


_SCALAR_KINDS = ("number", "bool", "str", "literal", "datetime", "any")


def _value_problem(kind: FieldKind, options: tuple[Any, ...], cond: Condition) -> str | None:
    if cond.op in ("exists", "missing"):
        return None
    if kind in ("list", "object"):
        return f"is a {kind}: only exists and missing apply"
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    if cond.op in _ORDER_OPS:
        return (
            None
            if kind in ("number", "any")
            else f"is {kind}, not a number: {cond.op} compares numbers"
        )
    for value in values:
        if kind == "literal" and value not in options:
            return f"{value!r} is not one of {', '.join(map(str, options))}"
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"is a number; {value!r} is not"
        if kind == "bool" and not isinstance(value, bool):
            return f"is true or false; {value!r} is not"
        if kind in ("str", "datetime") and not isinstance(value, str):
            return f"is text; {value!r} is not (quote it)"
    return None


def _check(
    where: str,
    cond: Condition,
    roots: tuple[str, ...],
    event_types: tuple[str, ...],
    trigger_types: tuple[str, ...],
) -> Iterator[str]:
    root, *path = cond.field.split(".")
    if root not in roots:
        yield f"{where}.field: {cond.field!r}: here a field starts with {' or '.join(roots)}"
        return
    if root == "profile":
        models: list[tuple[str, type[BaseModel]]] = [("profiles.v1", ProfileSnapshot)]
    elif root == "scores":
        models = [("scores.v1", CustomerScores)]
    elif root == "event":
        models = [(t, EVENT_MODELS[t]) for t in event_types]
    else:
        models = [(t, EVENT_MODELS[t]) for t in trigger_types]
    found: list[tuple[str, FieldKind, tuple[Any, ...]]] = []
    missing: list[str] = []
    for name, model in models:
        try:
            kind, options = field_kind(model, path)
        except KeyError:
            missing.append(name)
            continue
        found.append((name, kind, options))
    # event.*: the event's own type must have it; trigger.*: at least one trigger type must.
    if (root != "trigger" and missing) or not found:
        yield f"{where}.field: {' and '.join(missing)} has no field {'.'.join(path)!r}"
        return
    for name, kind, options in found:
        if root == "event" and kind not in _SCALAR_KINDS:
            yield (
                f"{where}.field: {name}.{'.'.join(path)} is a {kind}; "
                "conditions on events test single values"
            )
            return
        problem = _value_problem(kind, options, cond)
        if problem:
            yield f"{where}: {cond.field} {problem}"
            return


def _list_name(spec: ConditionSpec) -> str:
    return "all" if spec.all is not None else "any"


_TRIGGER_ROOTS = ("event", "profile", "scores")
_FACT_ROOTS = ("event",)
_STEP_ROOTS = ("trigger", "profile", "scores")


def _problems(j: Journey) -> Iterator[str]:
    triggers = j.trigger_types

    def match(where: str, m: EventMatch, roots: tuple[str, ...]) -> Iterator[str]:
        for n, cond in enumerate(m.where):
            yield from _check(f"{where}.where[{n}]", cond, roots, (m.event,), triggers)

    for n, trigger in enumerate(j.triggers):
        yield from match(f"triggers[{n}]", trigger, _TRIGGER_ROOTS)
    for n, exit_match in enumerate(j.exit_when):
        yield from match(f"exit_when[{n}]", exit_match, _FACT_ROOTS)
    if j.goal is not None:
        yield from match("goal", j.goal, _FACT_ROOTS)
    sends = 0
    for n, step in enumerate(j.steps):
        conditions: tuple[Condition, ...] = ()
        where = f"steps[{n}]"
        if isinstance(step, SendStep):
            sends += 1
        elif isinstance(step, ConditionStep):
            conditions = step.condition.conditions
            where = f"steps[{n}].condition.{_list_name(step.condition)}"
        elif isinstance(step, WaitUntilStep):
            spec = step.wait_until
            if spec.event is not None:
                yield from match(f"steps[{n}].wait_until.event", spec.event, _FACT_ROOTS)
            if spec.condition is not None:
                conditions = spec.condition.conditions
                where = f"steps[{n}].wait_until.condition.{_list_name(spec.condition)}"
        for m, cond in enumerate(conditions):
            yield from _check(f"{where}[{m}]", cond, _STEP_ROOTS, (), triggers)
    if sends == 0:
        yield "steps: a journey sends at least one email"
    re_entry = j.re_entry
    if re_entry.key is not None:
        for event_type in triggers:
            try:
                kind, _ = field_kind(EVENT_MODELS[event_type], [re_entry.key])
            except KeyError:
                yield f"re_entry.key: {event_type} has no field {re_entry.key!r}"
                continue
            if kind not in _SCALAR_KINDS:
                yield f"re_entry.key: {event_type}.{re_entry.key} is a {kind}, not a single value"
    # A redelivered trigger is refused by the memory of its entry; that memory must outlive the
    # age at which the trigger would be refused anyway.
    if re_entry.cooldown is not None and re_entry.cooldown < j.max_trigger_age:
        yield "re_entry.cooldown: must be at least max_trigger_age"
    if re_entry.forget_after is not None and re_entry.forget_after < j.max_trigger_age:
        yield "re_entry.forget_after: must be at least max_trigger_age"

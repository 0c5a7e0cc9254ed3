"""Journey files to a catalog: text in, validated `Journey` models out, every error naming the
file and the field. Pure: reading the directory is `services.notify.journeys.load`.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import PurePath
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.journey_v1 import Journey, SendStep, WaitUntilStep
from schemas.topics.notifications_v1 import EmailKind

SUFFIXES = (".yaml", ".yml", ".json")


class JourneyError(ValueError):
    """A journey file that cannot be used, with every problem found in it."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{source}: {problem}" for problem in self.problems))


class CatalogError(ValueError):
    """Some journey files cannot be used: every file's problems, so one restart fixes all."""

    def __init__(self, errors: Iterable[JourneyError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice (plain YAML keeps the last silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _where(loc: tuple[int | str, ...]) -> str:
    """("steps", 0, "wait", "wait", "duration") -> "steps[0].wait.duration"."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != previous:  # a step's tag and its key are the same word
            out += f".{part}" if out else part
        previous = part
        if part == "value":  # the union's member names below it say nothing to an author
            break
    return out or "journey"


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required",
}


def _problems(error: ValidationError) -> list[str]:
    out: list[str] = []
    for item in error.errors(include_url=False):
        if item["type"] == "journey":  # across fields: each line names its own field
            lines = item["msg"].split("\n")
        else:
            lines = [f"{_where(item['loc'])}: {_MESSAGES.get(item['type'], item['msg'])}"]
        out.extend(line for line in lines if line not in out)
    return out


def parse_journey(text: str, source: str) -> Journey:
    """One journey file's text -> its Journey; `source` is the file name, used in errors and
    checked against the journey's id (welcome.yaml holds the journey `welcome`)."""
    path = PurePath(source)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
        else:
            raise JourneyError(source, [f"a journey file ends in {', '.join(SUFFIXES)}"])
    except json.JSONDecodeError as exc:
        raise JourneyError(source, [f"line {exc.lineno}: not JSON: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise JourneyError(source, [f"{at}not YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise JourneyError(source, ["a journey is a mapping of keys (version, id, steps, ...)"])
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        raise JourneyError(source, _problems(exc)) from None
    if journey.id != path.stem:
        raise JourneyError(
            source, [f"id: {journey.id!r} must be the file's name ({journey.id}{suffix})"]
        )
    return journey


@dataclass(frozen=True)
class Catalog:
    """The journeys the engine runs, by id, and what it derives from them once."""

    journeys: Mapping[str, Journey]
    trigger_types: frozenset[str] = field(init=False)
    triggered_by: Mapping[str, tuple[Journey, ...]] = field(init=False)
    """Event type -> the journeys one of whose triggers is of that type, in catalog order."""
    fact_types: frozenset[str] = field(init=False)
    """Event types some journey's exit_when, goal or wait_until reads: kept as facts."""
    max_trigger_age: timedelta = field(init=False)
    paused: frozenset[str] = frozenset()
    """Journeys an operator paused: no one enters them, and their runs wait where they are."""

    def with_paused(self, paused: frozenset[str]) -> "Catalog":
        return self if paused == self.paused else replace(self, paused=paused)

    def __post_init__(self) -> None:
        journeys = dict(sorted(self.journeys.items()))
        triggered_by: dict[str, list[Journey]] = {}
        facts: set[str] = set()
        for journey in journeys.values():
            for event_type in journey.trigger_types:
                triggered_by.setdefault(event_type, []).append(journey)
            facts.update(m.event for m in journey.exit_when)
            if journey.goal is not None:
                facts.add(journey.goal.event)
            for step in journey.steps:
                if isinstance(step, WaitUntilStep) and step.wait_until.event is not None:
                    facts.add(step.wait_until.event.event)
        oldest = max((j.max_trigger_age for j in journeys.values()), default=timedelta(0))
        object.__setattr__(self, "journeys", journeys)
        object.__setattr__(self, "trigger_types", frozenset(triggered_by))
        object.__setattr__(
            self, "triggered_by", {t: tuple(found) for t, found in triggered_by.items()}
        )
        object.__setattr__(self, "fact_types", frozenset(facts))
        object.__setattr__(self, "max_trigger_age", oldest)

    @classmethod
    def of(cls, journeys: Iterable[Journey]) -> "Catalog":
        out: dict[str, Journey] = {}
        for journey in journeys:
            if journey.id in out:
                raise CatalogError([JourneyError(journey.id, ["two journeys have this id"])])
            out[journey.id] = journey
        return cls(out)

    def templates(self) -> dict[str, EmailKind]:
        """Every template id the journeys send -> its kind (a template used as both is listed
        as marketing, the stricter)."""
        out: dict[str, EmailKind] = {}
        for journey in self.journeys.values():
            for step in journey.steps:
                if isinstance(step, SendStep):
                    kind = step.send.kind or journey.kind
                    if out.get(step.send.template) != "marketing":
                        out[step.send.template] = kind
        return dict(sorted(out.items()))


def load_catalog(files: Iterable[tuple[str, str]]) -> Catalog:
    """(file name, text) pairs -> the catalog; CatalogError listing every bad file."""
    journeys: list[Journey] = []
    errors: list[JourneyError] = []
    sources: dict[str, str] = {}
    for source, text in files:
        try:
            journey = parse_journey(text, source)
        except JourneyError as exc:
            errors.append(exc)
            continue
        if journey.id in sources:
            errors.append(
                JourneyError(source, [f"id: {journey.id!r} is also {sources[journey.id]}"])
            )
            continue
        sources[journey.id] = source
        journeys.append(journey)
    if errors:
        raise CatalogError(errors)
    return Catalog.of(journeys)

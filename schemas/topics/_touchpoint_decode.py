"""A faster validator for touchpoints.v1 values as ingest writes them: same models, same result.

`Touchpoint.model_validate_json` spends some 40% of its time in two steps that a value in the
form ingest writes does not need:

- the union discriminator `_event_tag` is a Python callable, so for JSON input pydantic-core
  first builds the whole event (context, properties, products) as Python dicts and strings to
  hand it over, then validates the event from the JSON again;
- `_to_utc` runs per datetime on pydantic-core's result (its own tzinfo) to give every datetime
  `datetime.UTC`: `astimezone`, a range check, three Python calls per event or more.

`fast_validator` rewrites the touchpoint's core schema (the one pydantic generated from the
contract models, so every model, field, limit, pattern, default and model validator stays) into
a stricter one:

- a datetime is accepted only in the form ingest writes, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` with a
  year from 1970 to 2099, and read by `datetime.fromisoformat`, which gives the value `_to_utc`
  gives (the same instant and fields, tzinfo `datetime.UTC`);
- the event's class is picked natively by its `type` and, for track, its `event` field, as
  `_event_tag` picks it; a generic track event whose name is a typed event's is refused, never
  read as a `TrackEvent`.

So whatever the fast validator accepts, the contract's validator accepts too and decodes to an
equal model (tests/unit/schemas/test_touchpoint_decode.py checks it). What it refuses (another
UTC offset, a zone-less time, a Unix timestamp, and of course garbage) the caller validates with
the contract's validator, which gives the contract's answer: see `Touchpoint.from_json`.
"""

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic_core import PydanticCustomError, SchemaValidator, core_schema

from schemas._types import _to_utc
from schemas.events import TYPED_EVENTS, TrackEvent
from schemas.parse import _event_tag

# The form of every datetime ingest writes: orjson's OPT_UTC_Z for the touchpoint's own fields,
# pydantic's serializer for the event's (both "Z", microseconds only when not zero). Years are
# bounded as `_to_utc` bounds them. ASCII digits only ("\d" would take any Unicode digit).
CANONICAL_DATETIME = (
    r"^(?:19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2}"
    r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z$"
)
_UTC_DATETIME: dict[str, Any] = dict(
    core_schema.no_info_after_validator_function(
        # In Python 3.11+, "...Z" parses to tzinfo datetime.UTC itself; a day or hour out of
        # range raises ValueError, which pydantic-core turns into a validation error.
        datetime.fromisoformat,
        core_schema.str_schema(pattern=CANONICAL_DATETIME),
    )
)


def _generic_track_only(event: TrackEvent) -> TrackEvent:
    # A typed name reaches here only when its typed model refused the event; the contract's
    # union never reads a typed name as the generic class, so neither may this one.
    if event.event in TYPED_EVENTS:
        raise PydanticCustomError("typed_event", "does not match its typed event")
    return event


def _field_discriminated(union: dict[str, Any]) -> dict[str, Any]:
    """`_event_tag`'s union as unions on the `type` field, then for track on the `event` field."""
    choices: dict[str, Any] = union["choices"]
    typed = {
        tag.removeprefix("event:"): choice
        for tag, choice in choices.items()
        if tag.startswith("event:")
    }
    generic = core_schema.no_info_after_validator_function(
        _generic_track_only, choices["type:track"]
    )
    track = core_schema.union_schema(
        [core_schema.tagged_union_schema(typed, discriminator="event"), generic],
        mode="left_to_right",
    )
    by_type: dict[str, Any] = {
        tag.removeprefix("type:"): choice
        for tag, choice in choices.items()
        if tag.startswith("type:") and tag != "type:track"
    }
    by_type["track"] = track
    return dict(core_schema.tagged_union_schema(by_type, discriminator="type"))


def rewrite(
    schema: dict[str, Any], done: Counter[str], *, datetimes: bool = True, union: bool = True
) -> dict[str, Any]:
    """A copy of `schema` with the rewrites applied; `done` counts each one.

    `datetimes` and `union` turn one rewrite off, to measure what each is worth.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if datetimes and kind == "function-after" and node["function"].get("function") is _to_utc:
            done["datetime"] += 1
            return {**_UTC_DATETIME, **({"ref": node["ref"]} if "ref" in node else {})}
        if union and kind == "tagged-union" and node.get("discriminator") is _event_tag:
            done["union"] += 1
            node = _field_discriminated(node)
        # Metadata holds pydantic's JSON Schema hooks, never validation: kept as it is.
        return {key: value if key == "metadata" else walk(value) for key, value in node.items()}

    out: dict[str, Any] = walk(schema)
    return out


def fast_schema_validator(
    schema: Any, *, datetimes: bool = True, union: bool = True
) -> tuple[SchemaValidator, Counter[str]]:
    """A validator of the rewritten core `schema`, and how many places were rewritten.

    A rewrite that finds nothing to rewrite (a future pydantic laying schemas out differently)
    leaves the contract's validator in place there: slower, never different.
    """
    done: Counter[str] = Counter()
    rewritten = rewrite(dict(schema), done, datetimes=datetimes, union=union)
    root = rewritten["schema"] if rewritten["type"] == "definitions" else rewritten
    # _use_prebuilt=False: otherwise pydantic-core reuses each model's own validator for the
    # nested models, the contract's, and the rewrites inside them would not apply.
    return SchemaValidator(rewritten, root.get("config"), _use_prebuilt=False), done


def fast_validator(
    model: Any, *, datetimes: bool = True, union: bool = True
) -> tuple[Callable[[bytes | str], Any], Counter[str]]:
    """`validate_json` of the rewritten schema of `model`, and how many places were rewritten."""
    validator, done = fast_schema_validator(
        model.__pydantic_core_schema__, datetimes=datetimes, union=union
    )
    return validator.validate_json, done

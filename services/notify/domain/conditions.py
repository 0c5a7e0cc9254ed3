"""Conditions evaluated against JSON data: an event's payload, the run's trigger, the profile
(profiles.v1) and the scores (scores.v1), all as their JSON form (money as decimal strings).

- A missing or null field: eq, in, gt.. and exists are false; ne, not_in and missing are true.
- `exists`: present, not null and not empty (an empty list, object or text counts as absent).
- Numbers compare exactly as decimals, so "19.90" (money) equals 19.9.
"""

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.journey_v1 import Condition, EventMatch

Roots = Mapping[str, Mapping[str, Any] | None]
"""Root name (event, trigger, profile, scores) -> its JSON object, or None when unknown."""

_NUMBER_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def lookup(data: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    """The value at `path`, or None when a part is missing."""
    current: Any = data
    for part in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            return None
    return None


def _present(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, list | dict | str | tuple) and len(value) == 0)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, int | float):
        number = _number(actual)
        return number is not None and number == _number(expected)
    return isinstance(actual, str) and actual == expected


def holds(condition: Condition, roots: Roots) -> bool:
    root, *path = condition.field.split(".")
    actual = lookup(roots.get(root), path)
    op = condition.op
    if op == "exists":
        return _present(actual)
    if op == "missing":
        return not _present(actual)
    expected = condition.value
    if op in ("in", "not_in"):
        assert isinstance(expected, list)
        found = actual is not None and any(_equal(actual, value) for value in expected)
        return found if op == "in" else not found
    if op in ("eq", "ne"):
        same = actual is not None and _equal(actual, expected)
        return same if op == "eq" else not same
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right  # lte


def all_hold(conditions: Sequence[Condition], roots: Roots) -> bool:
    return all(holds(condition, roots) for condition in conditions)


def matches(match: EventMatch, event_type: str, roots: Roots) -> bool:
    """The event (roots["event"]) is of the match's type and passes its `where`."""
    return match.event == event_type and all_hold(match.where, roots)

"""Validation errors as field-level messages: which field, and which limit it broke."""

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict

from schemas._types import CURRENCY_PATTERN, EMAIL_PATTERN

MAX_ERRORS = 50


class FieldError(TypedDict):
    """One problem with one field; `field` is a dotted path such as properties.products[0].price."""

    field: str
    message: str


_FIXED = {
    "missing": "is required",
    "extra_forbidden": "is not allowed",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
    "datetime_type": "must be an ISO-8601 timestamp",
    "datetime_parsing": "must be an ISO-8601 timestamp",
    "datetime_from_date_parsing": "must be an ISO-8601 timestamp",
    "datetime_object_invalid": "must be an ISO-8601 timestamp",
}

_WITH_LIMIT = {
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} items",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "literal_error": "must be {expected}",
}

_PATTERNS = {
    CURRENCY_PATTERN: "must be a 3-letter ISO 4217 currency code",
    EMAIL_PATTERN: "must be an email address",
}


def _number(value: Any) -> Any:
    # Bounds on float fields arrive as 0.0; people write 0.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _WITH_LIMIT:
        return _WITH_LIMIT[kind].format(**{k: _number(v) for k, v in ctx.items()})
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERNS.get(pattern, f"must match {pattern}")
    return error["msg"]


def _path(loc: list[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def field_errors(exc: ValidationError, *, limit: int = MAX_ERRORS) -> list[FieldError]:
    """Turn a pydantic error into at most `limit` field-level messages, in input order."""
    out: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        # Union tags ("type:track", "event:Order Completed") are not fields: leave them out.
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith(_TAG_PREFIXES))]
        ctx = error.get("ctx") or {}
        if "field" in ctx:  # a model-level check that knows which field it is about
            loc.append(str(ctx["field"]))
        elif error["type"] == "event_type":
            loc.append("type")
        out.append({"field": _path(loc), "message": _message(error)})
    return out


_TAG_PREFIXES = ("type:", "event:")


class InvalidEvent(ValueError):
    """An event that breaks the contract; `errors` says which fields and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors))

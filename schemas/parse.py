"""The entry point ingest calls per raw event: `parse_event(raw) -> SegmentEvent`.

One pydantic validator is built at import time and reused: each call is a single pass through
pydantic-core plus a dictionary look-up that picks the event's model, so no model is built per
call.

Before the models, every JSON value in the event, whatever its field, is held to what every
consumer can decode and store (`value_errors`): at most MAX_DEPTH levels of objects and arrays
under a field, and no NUL character in a string or key (PostgreSQL's text and jsonb refuse it).
"""

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Union, cast

from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError

from schemas._types import MAX_DEPTH, MAX_NAME, UtcDatetime
from schemas.errors import FieldError, InvalidEvent, _path, field_errors
from schemas.events import (
    TYPED_EVENT_CLASSES,
    TYPED_EVENTS,
    CartViewedEvent,
    CheckoutStartedEvent,
    CouponAppliedEvent,
    EmailLinkClickedEvent,
    EmailOpenedEvent,
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderRefundedEvent,
    ProductAddedEvent,
    ProductRemovedEvent,
    ProductViewedEvent,
    ReferralCodeUsedEvent,
    ReviewSubmittedEvent,
    SignedUpEvent,
    SupportTicketOpenedEvent,
    SupportTicketResolvedEvent,
    TrackEvent,
    UnsubscribedEvent,
)
from schemas.segment import (
    EVENT_TYPES,
    AliasEvent,
    BaseEvent,
    Context,
    EventType,
    GroupEvent,
    IdentifyEvent,
    PageEvent,
    ScreenEvent,
    SegmentModel,
)

_TYPE_TAGS: dict[str, str] = {kind: f"type:{kind}" for kind in EVENT_TYPES}
_TYPED_TAGS = {name: cls.union_tag for name, cls in TYPED_EVENTS.items()}


def _event_tag(value: Any) -> str | None:
    """Which union member validates `value`: the `type`, and for track the event name."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "track":
            name = value.get("event")
            return _TYPED_TAGS.get(name, "type:track") if isinstance(name, str) else "type:track"
        return _TYPE_TAGS.get(kind) if isinstance(kind, str) else None
    if isinstance(value, BaseEvent):
        return value.union_tag
    return None


EVENT_CLASSES: tuple[type[BaseEvent], ...] = (
    IdentifyEvent,
    TrackEvent,
    PageEvent,
    ScreenEvent,
    GroupEvent,
    AliasEvent,
    *TYPED_EVENT_CLASSES,
)

if TYPE_CHECKING:
    SegmentEvent = (
        IdentifyEvent
        | TrackEvent
        | PageEvent
        | ScreenEvent
        | GroupEvent
        | AliasEvent
        | ProductViewedEvent
        | ProductAddedEvent
        | ProductRemovedEvent
        | CartViewedEvent
        | CheckoutStartedEvent
        | OrderCompletedEvent
        | OrderRefundedEvent
        | OrderCancelledEvent
        | CouponAppliedEvent
        | SignedUpEvent
        | EmailOpenedEvent
        | EmailLinkClickedEvent
        | UnsubscribedEvent
        | ReferralCodeUsedEvent
        | ReviewSubmittedEvent
        | SupportTicketOpenedEvent
        | SupportTicketResolvedEvent
    )
else:
    # pydantic needs each member tagged; the tags come from the classes so they cannot drift.
    SegmentEvent = Annotated[
        Union[tuple(Annotated[cls, Tag(cls.union_tag)] for cls in EVENT_CLASSES)],  # noqa: UP007
        Discriminator(
            _event_tag,
            custom_error_type="event_type",
            custom_error_message="must be one of: " + ", ".join(EVENT_TYPES),
        ),
    ]
"""Any valid Segment event: a typed class for a known track name, else the generic one."""

_ADAPTER: TypeAdapter[SegmentEvent] = TypeAdapter(SegmentEvent)
# The core validator directly: TypeAdapter.validate_python adds Python-side overhead per call.
_validate = _ADAPTER.validator.validate_python


@cache
def _fast_validate() -> Callable[[Any], SegmentEvent]:
    """The contract's validator with the rewrites of `schemas.topics._touchpoint_decode`:
    datetimes only in the form `...Z` that analytics.js and most SDKs send, the event's class
    picked natively. What it accepts, the contract accepts and decodes alike, in about half the
    time; for anything it refuses `parse_event` asks the contract's validator."""
    # Imported here: that module builds on this one.
    from schemas.topics._touchpoint_decode import fast_schema_validator

    validator, _ = fast_schema_validator(_ADAPTER.core_schema)
    return cast(Callable[[Any], SegmentEvent], validator.validate_python)


DEPTH_MESSAGE = f"must not nest objects and arrays more than {MAX_DEPTH} levels deep"
NUL_MESSAGE = "must not contain a NUL character (\\u0000)"
NUL_KEY_MESSAGE = "keys must not contain a NUL character (\\u0000)"
_NUL_ESCAPED = b"\\u0000"  # how a JSON encoder writes NUL; never a literal NUL byte


def value_errors(event: Mapping[str, Any], encoded: bytes | None = None) -> list[FieldError]:
    """Where the JSON values of `event` break the rules of every field; [] when none does.

    A field (`properties`, `traits`, `context`, any other) may nest objects and arrays at most
    MAX_DEPTH levels deep (`{}` is one level), and no string or key may hold a NUL character.
    The depth error names the top-level field; a NUL, the path to its string (or to the object
    whose key holds it). One error per top-level field, the first found.

    `encoded` is the event as compact JSON, when the caller has it: then an event with no
    escaped NUL and no more objects and arrays in all than the limit allows, the common case,
    is settled by two byte scans without looking at a single value.
    """
    if (
        encoded is not None
        # A backslash is rare in compact JSON: most events skip the longer search.
        and (b"\\" not in encoded or _NUL_ESCAPED not in encoded)
        # Objects and arrays in all, an upper bound on the depth (one pass, no Python loop).
        and len(encoded) - len(encoded.translate(None, b"{[")) <= MAX_DEPTH + 1
    ):
        return []
    errors: list[FieldError] = []
    for key, value in event.items():
        if "\x00" in key:
            errors.append({"field": "", "message": NUL_KEY_MESSAGE})
            continue
        found = _first_problem(value, MAX_DEPTH)
        if found is None:
            continue
        message, below = found
        if message == DEPTH_MESSAGE:
            errors.append({"field": key, "message": message})
        else:
            errors.append({"field": _path([key, *reversed(below)]), "message": message})
    return errors


def _first_problem(value: Any, levels: int) -> tuple[str, list[str | int]] | None:
    """The first NUL or excess depth in `value`: its message and path, innermost part first.

    `levels` is how many levels of objects and arrays `value` may still open; the walk never
    goes deeper than that, so it needs no more than MAX_DEPTH frames whatever the input.
    """
    if isinstance(value, str):
        return (NUL_MESSAGE, []) if "\x00" in value else None
    children: Any
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    if levels == 0:
        return DEPTH_MESSAGE, []
    for part, child in children:
        if isinstance(part, str) and "\x00" in part:
            return NUL_KEY_MESSAGE, []
        if isinstance(child, str | dict | list):
            found = _first_problem(child, levels - 1)
            if found is not None:
                found[1].append(part)
                return found
    return None


def parse_event(
    raw: Any, *, event_type: EventType | None = None, encoded: bytes | None = None
) -> SegmentEvent:
    """Validate one raw event (a decoded JSON object); raise InvalidEvent naming each bad field.

    `event_type` is the type implied by the endpoint (/v1/track, ...); it overrides the body's.
    `encoded`, the event as compact JSON if the caller has it, makes `value_errors` faster.
    """
    if not isinstance(raw, dict):
        if not isinstance(raw, Mapping):
            raise InvalidEvent([{"field": "", "message": "must be a JSON object"}])
        raw = dict(raw)
    problems = value_errors(raw, encoded)
    if problems:
        raise InvalidEvent(problems)
    if event_type is not None and raw.get("type") != event_type:
        raw = {**raw, "type": event_type}
    try:
        return _fast_validate()(raw)
    except ValidationError:
        pass  # outside the handler below, so the contract's error is not chained to this one
    try:
        return cast(SegmentEvent, _validate(raw))
    except ValidationError as exc:
        raise InvalidEvent(field_errors(exc)) from exc


# Batch-level keys an event inherits when it lacks them: server SDKs put sentAt on the batch.
_BATCH_DEFAULTS = ("sentAt", "context", "integrations")


def apply_batch_defaults(item: Any, body: Mapping[str, Any]) -> Any:
    """The batch item with the batch's sentAt, context and integrations where it has none."""
    if not isinstance(item, dict):
        return item
    missing = [key for key in _BATCH_DEFAULTS if key not in item and body.get(key) is not None]
    if not missing:
        return item
    return {**item, **{key: body[key] for key in missing}}


class BatchRequest(SegmentModel):
    """The body of POST /v1/batch (and /v1/import), for its JSON Schema.

    Ingest does not validate a batch with this model: it validates each item with parse_event
    so one bad event does not refuse the others.
    """

    batch: list[SegmentEvent]
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    sent_at: UtcDatetime | None = None
    write_key: str | None = Field(default=None, max_length=MAX_NAME)

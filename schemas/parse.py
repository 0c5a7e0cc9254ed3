"""The entry point ingest calls per raw event: `parse_event(raw) -> SegmentEvent`.

One pydantic validator is built at import time and reused: each call is a single pass through
pydantic-core plus a dictionary look-up that picks the event's model, so no model is built per
call.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Union, cast

from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError

from schemas._types import MAX_NAME, UtcDatetime
from schemas.errors import InvalidEvent, field_errors
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


def parse_event(raw: Any, *, event_type: EventType | None = None) -> SegmentEvent:
    """Validate one raw event (a decoded JSON object); raise InvalidEvent naming each bad field.

    `event_type` is the type implied by the endpoint (/v1/track, ...); it overrides the body's.
    """
    if not isinstance(raw, dict):
        if not isinstance(raw, Mapping):
            raise InvalidEvent([{"field": "", "message": "must be a JSON object"}])
        raw = dict(raw)
    if event_type is not None and raw.get("type") != event_type:
        raw = {**raw, "type": event_type}
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

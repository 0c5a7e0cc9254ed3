"""From decoded request bodies to touchpoints and rejections: the rules of the tracking API.

Pure: the caller passes the source, `received_at` and the limits; nothing is published here.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from schemas import FieldError, InvalidEvent
from schemas._types import MAX_DEPTH
from schemas.parse import apply_batch_defaults, parse_event
from schemas.segment import EventType
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint, RejectReason
from schemas.topics.touchpoints_v1 import Touchpoint, stamp

MAX_BATCH_EVENTS = 10_000


class CredentialError(ValueError):
    """An Authorization header that cannot be read as the write key; the message says why."""


def basic_write_key(authorization: str | None) -> str | None:
    """The write key of an HTTP Basic header (its username; the password is ignored).

    None when the request has no Basic credentials (no header, or another scheme); a Basic
    header that is there but unusable raises CredentialError rather than passing as absent.
    """
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    if not credentials.strip():
        raise CredentialError(
            "Authorization header: Basic credentials are missing; send the base64 encoding "
            "of '<writeKey>:'"
        )
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    # Bad base64 (binascii.Error), a username that is not UTF-8 (UnicodeDecodeError) and text
    # with a character outside ASCII, which b64decode refuses (a header is read as Latin-1, so
    # a client can send any byte): each a ValueError.
    except ValueError:
        raise CredentialError(
            "Authorization header: Basic credentials must be the base64 encoding of "
            "'<writeKey>:' (UTF-8)"
        ) from None
    user, _, _password = decoded.partition(":")
    if not user:
        raise CredentialError(
            "Authorization header: the Basic username, which carries the write key, is empty"
        )
    return user


def authorization_scheme(authorization: str | None) -> str | None:
    """The scheme of an Authorization header ("Bearer", ...), to name it when it is refused."""
    if not authorization or not authorization.strip():
        return None
    return authorization.strip().partition(" ")[0][:20]


def body_write_key(body: Mapping[str, Any]) -> str | None:
    """`writeKey` in the JSON body, as browser SDKs send it."""
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


@dataclass(frozen=True)
class EventRejection:
    """Why one event of a request was refused, as the HTTP response reports it."""

    index: int | None
    reason: RejectReason
    message: str
    errors: list[FieldError] = field(default_factory=list)
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        if self.message_id is not None:
            body["messageId"] = self.message_id
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass
class Intake:
    accepted: list[Touchpoint] = field(default_factory=list)
    rejections: list[EventRejection] = field(default_factory=list)
    rejected_records: list[RejectedTouchpoint] = field(default_factory=list)


class BatchShapeError(ValueError):
    """The batch body itself is malformed (no list of events, too many events)."""

    status = 400


class BatchTooLargeError(BatchShapeError):
    """The batch's events, once the batch-level defaults are copied into each, are too large."""

    status = 413


def _message_id_of(raw: Any) -> str | None:
    value = raw.get("messageId") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _encoded(raw: Any) -> bytes | None:
    """The event as compact JSON, or None when it nests deeper than orjson encodes."""
    try:
        return orjson.dumps(raw)
    except orjson.JSONEncodeError:  # the only failure for values orjson itself decoded
        return None


_CUT = "…"


def _cut(value: Any, levels: int) -> Any:
    """`value` with every object or array deeper than `levels` replaced by "…"."""
    if isinstance(value, dict):
        return {k: _cut(v, levels - 1) for k, v in value.items()} if levels > 0 else _CUT
    if isinstance(value, list):
        return [_cut(v, levels - 1) for v in value] if levels > 0 else _CUT
    return value


def _without_write_key(raw: Any) -> Any:
    if isinstance(raw, dict):
        raw.pop("writeKey", None)  # a credential, not part of the event
    return raw


def identify_traits_from_context(raw: Any, event_type: EventType | None) -> Any:
    """An identify with its traits in `traits`, where the Segment spec has them.

    RudderStack's SDKs send an identify's traits only as `context.traits`; without this they
    would be folded into no profile. Moved, not copied, so the event keeps its size; an
    identify that has `traits` is left as it is.
    """
    if not isinstance(raw, dict) or (event_type or raw.get("type")) != "identify":
        return raw
    context = raw.get("context")
    if raw.get("traits") is not None or not isinstance(context, dict):
        return raw
    traits = context.get("traits")
    if not isinstance(traits, dict):
        return raw
    # A copy: a batch's context may be shared by every event it was copied into.
    raw["context"] = {key: value for key, value in context.items() if key != "traits"}
    raw["traits"] = traits
    return raw


class IntakeRules:
    def __init__(self, *, max_event_bytes: int, max_expanded_batch_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_expanded_batch_bytes = max_expanded_batch_bytes

    def take(
        self,
        raw_events: list[Any],
        *,
        event_type: EventType | None,
        source_id: str,
        received_at: datetime,
    ) -> Intake:
        """Validate and stamp each event; refused ones become rejections, the rest touchpoints.

        With `event_type` (the single-event endpoints) rejections carry no batch index.
        """
        events = [
            identify_traits_from_context(_without_write_key(raw), event_type) for raw in raw_events
        ]
        return self._take(
            events,
            [_encoded(event) for event in events],
            event_type=event_type,
            source_id=source_id,
            received_at=received_at,
        )

    def _take(
        self,
        raw_events: list[Any],
        encodings: list[bytes | None],
        *,
        event_type: EventType | None,
        source_id: str,
        received_at: datetime,
    ) -> Intake:
        """`take` for events already encoded (None: deeper than orjson encodes)."""
        intake = Intake()

        def reject(
            encoded: bytes,
            index: int | None,
            reason: RejectReason,
            message: str,
            errors: list[FieldError],
            raw: Any,
        ) -> None:
            message_id = _message_id_of(raw)
            intake.rejections.append(EventRejection(index, reason, message, errors, message_id))
            intake.rejected_records.append(
                RejectedTouchpoint.of(
                    encoded,
                    reason=reason,
                    message=message,
                    received_at=received_at,
                    source_id=source_id,
                    errors=errors,
                    message_id=message_id,
                )
            )

        for position, (raw, encoded) in enumerate(zip(raw_events, encodings, strict=True)):
            index = None if event_type is not None else position
            # encoded is None when deeper than orjson encodes (254 levels): far past MAX_DEPTH,
            # so parse_event refuses it, naming the field.
            if encoded is not None and len(encoded) > self.max_event_bytes:
                limit = self.max_event_bytes
                message = (
                    f"event is {len(encoded)} bytes; the limit is {limit} bytes "
                    f"({limit // 1024} KB) per event"
                )
                reject(encoded, index, "event_too_large", message, [], raw)
                continue
            try:
                event = parse_event(raw, event_type=event_type, encoded=encoded)
            except InvalidEvent as invalid:
                if encoded is None:  # the record keeps the event cut at the depth limit
                    encoded = orjson.dumps(_cut(raw, MAX_DEPTH + 1))
                reject(encoded, index, "validation_failed", str(invalid), invalid.errors, raw)
                continue
            intake.accepted.append(stamp(event, received_at=received_at, source_id=source_id))
        return intake

    def take_batch(self, body: dict[str, Any], *, source_id: str, received_at: datetime) -> Intake:
        events = body.get("batch")
        if not isinstance(events, list):
            raise BatchShapeError("batch: must be a list of events")
        if len(events) > MAX_BATCH_EVENTS:
            raise BatchShapeError(f"batch: at most {MAX_BATCH_EVENTS} events per request")
        # What the request produces, not only what it carries: a batch-level context is copied
        # into every item, so a small body could expand into megabytes of events. Measured on
        # the JSON each event needs anyway, and stopped at the limit, before any validation.
        limit = self.max_expanded_batch_bytes
        items: list[Any] = []
        encodings: list[bytes | None] = []
        expanded = 0
        for event in events:
            item = identify_traits_from_context(
                _without_write_key(apply_batch_defaults(event, body)), None
            )
            encoded = _encoded(item)
            expanded += len(encoded) if encoded is not None else 0
            if expanded > limit:
                raise BatchTooLargeError(
                    f"the batch's events exceed the limit of {limit} bytes ({limit // 1024} KB) "
                    "in all, counted once the batch's context, integrations and sentAt are "
                    "copied into each event"
                )
            items.append(item)
            encodings.append(encoded)
        return self._take(
            items, encodings, event_type=None, source_id=source_id, received_at=received_at
        )

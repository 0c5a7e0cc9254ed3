"""touchpoints.rejected.v1: an event ingest refused, with why, so a source owner can fix it."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas._types import MAX_ID, MAX_TEXT, Count, OptionalId, Text, UtcDatetime
from schemas.errors import MAX_ERRORS, FieldError
from schemas.topics._common import TopicModel

# The per-event limit of the ingest API: any event within limits is kept whole.
MAX_PAYLOAD_BYTES = 32 * 1024

RejectReason = Literal["validation_failed", "event_too_large", "invalid_json"]


class RejectedTouchpoint(TopicModel):
    source_id: OptionalId = Field(description="The source whose write key sent the event.")
    received_at: UtcDatetime
    reason: RejectReason
    message: Text = Field(description="One human-readable line: what was wrong.")
    errors: list[FieldError] = Field(default_factory=list, max_length=MAX_ERRORS)
    message_id: OptionalId = Field(
        default=None, description="The event's messageId, if it had one."
    )
    payload: str = Field(
        max_length=MAX_PAYLOAD_BYTES,
        description="The raw event as UTF-8 text, cut to MAX_PAYLOAD_BYTES bytes.",
    )
    payload_size: Count = Field(description="Size of the whole raw event in bytes.")
    payload_truncated: bool

    @classmethod
    def of(
        cls,
        raw: bytes,
        *,
        reason: RejectReason,
        message: str,
        received_at: datetime,
        source_id: str | None,
        errors: list[FieldError] | None = None,
        message_id: str | None = None,
    ) -> "RejectedTouchpoint":
        """A rejection record for `raw` (the event's bytes), bounded to MAX_PAYLOAD_BYTES."""
        payload, truncated = bounded_text(raw, MAX_PAYLOAD_BYTES)
        return cls(
            source_id=source_id,
            received_at=received_at,
            reason=reason,
            message=message[:MAX_TEXT],
            errors=(errors or [])[:MAX_ERRORS],
            # The id itself may be why the event was refused: keep it only if within the limit.
            message_id=message_id if message_id and len(message_id) <= MAX_ID else None,
            payload=payload,
            payload_size=len(raw),
            payload_truncated=truncated,
        )


def bounded_text(data: bytes, limit: int) -> tuple[str, bool]:
    """At most `limit` bytes of `data` as text, cut on a character boundary; and whether cut.

    Bytes that are not UTF-8 show as U+FFFD rather than failing the record.
    """
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace"), False
    cut = limit
    while cut > 0 and data[cut] & 0xC0 == 0x80:  # a continuation byte: the cut splits a character
        cut -= 1
    return data[:cut].decode("utf-8", errors="replace"), True

"""What recipients do with notify's emails, fed back as touchpoints: an open, a click and an
unsubscribe become `Email Opened`, `Email Link Clicked` and `Unsubscribed` events on
touchpoints.v1, which the profile service folds like any other event (engagement counts,
consent), so scoring and the journeys see them too.

A touchpoint names its customer the way an SDK would: by the userId the profile holds, else
one of its anonymousIds. Its messageId is derived from the email and what happened (and the
link, for a click), so the same open or click seen again counts once in the profile.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from schemas.parse import parse_event
from schemas.topics import TOUCHPOINTS
from schemas.topics.touchpoints_v1 import Touchpoint
from services.runtime.messages import OutboxMessage

SOURCE_ID = "notify"
_MESSAGE_NAMESPACE = UUID("8a7e4c1d-5f2b-5c39-a6d0-3e9b7f1c2a44")

Feedback = Literal["Email Opened", "Email Link Clicked", "Unsubscribed"]


def feedback_touchpoint(
    event: Feedback,
    notification_id: str,
    profile: Mapping[str, Any] | None,
    at: datetime,
    properties: Mapping[str, Any],
) -> OutboxMessage | None:
    """The touchpoints.v1 message, or None when notify knows no identity for the customer (an
    erased customer, whose profile it no longer holds)."""
    identity = _identity(profile or {})
    if identity is None:
        return None
    kind, key = identity
    distinct = [notification_id, event, str(properties.get("link_url", ""))]
    segment = parse_event(
        {
            "type": "track",
            "event": event,
            kind: key,
            "messageId": str(uuid5(_MESSAGE_NAMESPACE, "\x1f".join(distinct))),
            "timestamp": at.isoformat(),
            "properties": {"email_id": notification_id, **properties},
            "context": {"library": {"name": "retain-notify", "version": "1"}},
        }
    )
    touchpoint = Touchpoint(
        message_id=segment.message_id or notification_id,
        customer_key=key,
        source_id=SOURCE_ID,
        received_at=at,
        timestamp=at,
        event=segment,
    )
    return OutboxMessage(TOUCHPOINTS, key.encode(), touchpoint.to_json())


def _identity(profile: Mapping[str, Any]) -> tuple[str, str] | None:
    if profile.get("user_id"):
        return "userId", str(profile["user_id"])
    anonymous = profile.get("anonymous_ids") or []
    return ("anonymousId", str(anonymous[0])) if anonymous else None

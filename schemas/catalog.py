"""Which payload model each Kafka topic carries: the link between topic specs and payload models/.

Consumers decode with `PAYLOADS[topic].adapter.validate_json(value)` (touchpoints.v1: the same
result from `Touchpoint.from_json(value)`, in less time); the exporter writes one
JSON Schema per payload and the AsyncAPI document from this table.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from schemas.topics import (
    LIFECYCLE,
    LIFECYCLE_DLQ,
    NOTIFICATIONS,
    NOTIFICATIONS_DLQ,
    PROFILES,
    PROFILES_DLQ,
    SCORES,
    SCORES_DLQ,
    TOUCHPOINTS,
    TOUCHPOINTS_DLQ,
    TOUCHPOINTS_REJECTED,
)
from schemas.topics.dlq_v1 import DeadLetter
from schemas.topics.lifecycle_v1 import LifecycleEvent
from schemas.topics.notifications_v1 import NotificationEvent
from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.scores_v1 import CustomerScores
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint


@dataclass(frozen=True)
class Payload:
    message: str  # message name in the AsyncAPI document
    schema_file: str  # file name under schemas/jsonschema/
    model: Any  # the model, or an annotated union of models
    producers: str
    summary: str
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.model))


_DEAD_LETTER = Payload(
    "DeadLetter",
    "dlq.v1.json",
    DeadLetter,
    "each consumer",
    "A message the consumer could not process, with the error; the consumer moved on.",
)

PAYLOADS: dict[str, Payload] = {
    TOUCHPOINTS: Payload(
        "Touchpoint",
        "touchpoints.v1.json",
        Touchpoint,
        "ingest",
        "A validated Segment event with server fields: messageId, receivedAt, corrected timestamp.",
    ),
    TOUCHPOINTS_REJECTED: Payload(
        "RejectedTouchpoint",
        "touchpoints.rejected.v1.json",
        RejectedTouchpoint,
        "ingest",
        "An event ingest refused: the raw payload (bounded), the reason and field errors.",
    ),
    PROFILES: Payload(
        "ProfileSnapshot",
        "profiles.v1.json",
        ProfileSnapshot,
        "profile",
        "The latest profile of a customer.",
    ),
    SCORES: Payload(
        "CustomerScores",
        "scores.v1.json",
        CustomerScores,
        "scoring",
        "CLV, RFM, value tier, ladder step, lifecycle stage and churn risk of a customer.",
    ),
    LIFECYCLE: Payload(
        "LifecycleEvent",
        "lifecycle.v1.json",
        LifecycleEvent,
        "scoring, profile",
        "A transition in a customer's life, discriminated by `type`.",
    ),
    NOTIFICATIONS: Payload(
        "NotificationEvent",
        "notifications.v1.json",
        NotificationEvent,
        "notify",
        "An email sent, suppressed (with the reason), bounced, uncertain, opened, clicked or "
        "unsubscribed from, discriminated by `type`.",
    ),
    TOUCHPOINTS_DLQ: _DEAD_LETTER,
    PROFILES_DLQ: _DEAD_LETTER,
    LIFECYCLE_DLQ: _DEAD_LETTER,
    SCORES_DLQ: _DEAD_LETTER,
    NOTIFICATIONS_DLQ: _DEAD_LETTER,
}

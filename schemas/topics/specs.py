"""Every Kafka topic of Retain, as code: the one place partitions, retention and cleanup live.

They are part of the contract, so they live in schemas/ beside the payload models.

Topics are contracts (docs/architecture.md, rule 2): a breaking change to a payload is a new
topic version, never an edit of an existing one. `ensure_topics` (services/runtime/kafka.py)
creates whatever is missing at start-up and is safe to run from every service at once.
"""

from dataclasses import dataclass, field
from typing import Literal

DAY_MS = 24 * 60 * 60 * 1000

CleanupPolicy = Literal["delete", "compact"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    cleanup_policy: CleanupPolicy
    retention_ms: int | None  # None: keep forever (compacted topics keep the latest per key)
    key: str
    description: str
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        config["retention.ms"] = "-1" if self.retention_ms is None else str(self.retention_ms)
        return config


TOUCHPOINTS = "touchpoints.v1"
TOUCHPOINTS_REJECTED = "touchpoints.rejected.v1"
TOUCHPOINTS_DLQ = "touchpoints.dlq.v1"
PROFILES = "profiles.v1"
PROFILES_DLQ = "profiles.dlq.v1"
SCORES = "scores.v1"
SCORES_DLQ = "scores.dlq.v1"
LIFECYCLE = "lifecycle.v1"
LIFECYCLE_DLQ = "lifecycle.dlq.v1"
NOTIFICATIONS = "notifications.v1"
NOTIFICATIONS_DLQ = "notifications.dlq.v1"

# Partitions bound consumer parallelism per group; 6 gives room to scale a consumer to six
# replicas while staying cheap on a single local broker.
_PARTITIONS = 6

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        TOUCHPOINTS,
        _PARTITIONS,
        "delete",
        30 * DAY_MS,
        "customer key (userId, else anonymousId)",
        "Validated, server-stamped Segment-style events from ingest.",
    ),
    TopicSpec(
        TOUCHPOINTS_REJECTED,
        _PARTITIONS,
        "delete",
        14 * DAY_MS,
        "none",
        "Events ingest refused: the raw payload (bounded), the reason and the source.",
    ),
    TopicSpec(
        PROFILES,
        _PARTITIONS,
        "compact",
        None,
        "customer id",
        "Latest profile snapshot per customer; a tombstone when the customer is erased.",
        {"min.compaction.lag.ms": "0", "delete.retention.ms": str(DAY_MS)},
    ),
    TopicSpec(
        SCORES,
        _PARTITIONS,
        "compact",
        None,
        "customer id",
        "Latest CLV, RFM, value tier, ladder step, stage and churn risk per customer.",
        {"min.compaction.lag.ms": "0", "delete.retention.ms": str(DAY_MS)},
    ),
    TopicSpec(
        LIFECYCLE,
        _PARTITIONS,
        "delete",
        30 * DAY_MS,
        "customer id",
        "Transitions: stage or segment changed, cart abandoned, consent changed, erased, ...",
    ),
    TopicSpec(
        NOTIFICATIONS,
        _PARTITIONS,
        "delete",
        30 * DAY_MS,
        "customer id",
        "Emails sent, suppressed (with why), bounced, uncertain after a crash mid-send; "
        "opened, clicked, unsubscribed.",
    ),
    TopicSpec(
        TOUCHPOINTS_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        "original key",
        "touchpoints.v1 messages the profile consumer could not process, with the error.",
    ),
    TopicSpec(
        PROFILES_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        "original key",
        "profiles.v1 messages a consumer (scoring, notify) could not process, with the error.",
    ),
    TopicSpec(
        SCORES_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        "original key",
        "scores.v1 messages the notify consumer could not process, with the error.",
    ),
    TopicSpec(
        LIFECYCLE_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        "original key",
        "lifecycle.v1 messages a consumer (scoring, notify) could not process, with the error.",
    ),
    TopicSpec(
        NOTIFICATIONS_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        "original key",
        "notifications.v1 messages the scoring consumer could not process, with the error.",
    ),
)

TOPICS_BY_NAME = {spec.name: spec for spec in TOPICS}

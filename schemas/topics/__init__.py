"""Retain's Kafka topics: their names and settings (specs.py) and payload models, one module per
topic version.

A breaking change is a new module and a new topic (`*_v2`); a v1 model only grows optional
fields, and consumers ignore fields they do not know.
"""

from schemas.topics.specs import (
    DAY_MS,
    LIFECYCLE,
    LIFECYCLE_DLQ,
    NOTIFICATIONS,
    NOTIFICATIONS_DLQ,
    PROFILES,
    PROFILES_DLQ,
    SCORES,
    SCORES_DLQ,
    TOPICS,
    TOPICS_BY_NAME,
    TOUCHPOINTS,
    TOUCHPOINTS_DLQ,
    TOUCHPOINTS_REJECTED,
    CleanupPolicy,
    TopicSpec,
)

__all__ = [
    "DAY_MS",
    "LIFECYCLE",
    "LIFECYCLE_DLQ",
    "NOTIFICATIONS",
    "NOTIFICATIONS_DLQ",
    "PROFILES",
    "PROFILES_DLQ",
    "SCORES",
    "SCORES_DLQ",
    "TOPICS",
    "TOPICS_BY_NAME",
    "TOUCHPOINTS",
    "TOUCHPOINTS_DLQ",
    "TOUCHPOINTS_REJECTED",
    "CleanupPolicy",
    "TopicSpec",
]

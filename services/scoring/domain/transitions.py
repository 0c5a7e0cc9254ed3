"""The lifecycle.v1 transitions scoring announces: stage_changed and segment_changed.

One event per real change of a customer's lifecycle stage, value tier, RFM segment, ladder
step or churn-risk band; none when nothing changed. A change of a ranked dimension says its
direction (a tier or ladder step up is worth congratulating; churn risk up is worth a win-back).

An event's id is derived from the customer, what changed, to what, and the revision of the
customer's scores that made the change: scores are rescored again and again (every profile
change, every refit, every redelivery), and only a stored revision that moved produces a
change, so the same change is never announced under two ids, while a customer who returns to
a segment later is announced again.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from schemas.topics.lifecycle_v1 import (
    LifecycleEvent,
    SegmentChanged,
    StageChanged,
    derived_event_id,
)
from schemas.topics.scores_v1 import LadderStep, LifecycleStage, ValueTier
from services.scoring.domain.rfm import RfmSegment
from services.scoring.domain.standing import CHURN_BANDS, LADDER, TIER_RANK, ChurnBand

Dimension = Literal["value_tier", "rfm_segment", "ladder_step", "churn_risk"]
# What a kept transition changed: the lifecycle stage, or one of the segment dimensions.
HistoryDimension = Literal["lifecycle_stage", Dimension]

# The dimensions whose segments rank: a change up or down says which way a customer moved.
_RANKS: dict[Dimension, dict[str, int]] = {
    "value_tier": {str(tier): rank for tier, rank in TIER_RANK.items()},
    "ladder_step": {step: rank for rank, step in enumerate(LADDER)},
    "churn_risk": {band: rank for rank, band in enumerate(CHURN_BANDS)},
}


@dataclass(frozen=True, slots=True)
class Standing:
    lifecycle_stage: LifecycleStage
    value_tier: ValueTier
    ladder_step: LadderStep
    rfm_segment: RfmSegment | None  # None until the customer has an order
    # None in standings stored before churn bands were announced: the first rescore sets it.
    churn_band: ChurnBand | None = None


def direction(dimension: Dimension, old: str | None, new: str) -> Literal["up", "down"] | None:
    ranks = _RANKS.get(dimension)
    if ranks is None or old is None:
        return None
    return "up" if ranks[new] > ranks[old] else "down"


def transitions(
    customer_id: str,
    before: Standing | None,
    after: Standing,
    *,
    revision: int,
    at: datetime,
) -> list[LifecycleEvent]:
    """What changed from `before` (None: a customer scored for the first time) to `after`,
    the scores' `revision` being the one that records `after`."""
    events: list[LifecycleEvent] = []
    was = None if before is None else before.lifecycle_stage
    if was != after.lifecycle_stage:
        events.append(
            StageChanged(
                type="stage_changed",
                event_id=derived_event_id(
                    "stage_changed", customer_id, after.lifecycle_stage, str(revision)
                ),
                customer_id=customer_id,
                occurred_at=at,
                from_stage=was,
                to_stage=after.lifecycle_stage,
            )
        )
    dimensions: tuple[tuple[Dimension, str | None, str | None], ...] = (
        ("value_tier", None if before is None else before.value_tier, after.value_tier),
        ("rfm_segment", None if before is None else before.rfm_segment, after.rfm_segment),
        ("ladder_step", None if before is None else before.ladder_step, after.ladder_step),
        ("churn_risk", None if before is None else before.churn_band, after.churn_band),
    )
    for dimension, old, new in dimensions:
        if new is None or old == new:
            continue
        events.append(
            SegmentChanged(
                type="segment_changed",
                event_id=derived_event_id(
                    "segment_changed", customer_id, dimension, new, str(revision)
                ),
                customer_id=customer_id,
                occurred_at=at,
                dimension=dimension,
                from_segment=old,
                to_segment=new,
                direction=direction(dimension, old, new),
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class Transition:
    """One announced change, as scoring keeps it (scoring.transitions): the customer's history,
    and the moves between segments per day."""

    event_id: str
    customer_id: str
    dimension: HistoryDimension
    from_segment: str | None
    to_segment: str
    at: datetime

    @property
    def day(self) -> date:
        return self.at.astimezone(UTC).date()


def kept(events: Iterable[LifecycleEvent]) -> list[Transition]:
    """The transitions among announced events, to keep beside the announcement."""
    found: list[Transition] = []
    for event in events:
        if isinstance(event, StageChanged):
            found.append(
                Transition(
                    event.event_id,
                    event.customer_id,
                    "lifecycle_stage",
                    event.from_stage,
                    event.to_stage,
                    event.occurred_at,
                )
            )
        elif isinstance(event, SegmentChanged):
            found.append(
                Transition(
                    event.event_id,
                    event.customer_id,
                    event.dimension,
                    event.from_segment,
                    event.to_segment,
                    event.occurred_at,
                )
            )
    return found

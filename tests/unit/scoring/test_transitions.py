"""Transitions: one event per real change, the same id when produced again."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics.lifecycle_v1 import SegmentChanged
from services.scoring.domain.transitions import Standing, transitions

AT = datetime(2026, 6, 1, tzinfo=UTC)
standings = st.builds(
    Standing,
    lifecycle_stage=st.sampled_from(["selection", "acquisition", "retention", "lapsed"]),
    value_tier=st.sampled_from(["most_valuable", "potential", "low_value"]),
    ladder_step=st.sampled_from(["prospect", "customer", "client"]),
    rfm_segment=st.sampled_from([None, "champions", "lost"]),
    churn_band=st.sampled_from([None, "low", "medium", "high"]),
)


@given(standings)
def test_nothing_changed_nothing_announced(standing: Standing) -> None:
    assert transitions("cus_1", standing, standing, revision=4, at=AT) == []


@given(standings, standings)
def test_each_real_change_is_announced_once_with_an_id_that_repeats(
    before: Standing, after: Standing
) -> None:
    events = transitions("cus_1", before, after, revision=7, at=AT)
    again = transitions("cus_1", before, after, revision=7, at=AT)
    assert [e.event_id for e in events] == [e.event_id for e in again]
    changed = {
        "stage": before.lifecycle_stage != after.lifecycle_stage,
        "value_tier": before.value_tier != after.value_tier,
        "ladder_step": before.ladder_step != after.ladder_step,
        "rfm_segment": after.rfm_segment is not None and before.rfm_segment != after.rfm_segment,
        "churn_risk": after.churn_band is not None and before.churn_band != after.churn_band,
    }
    assert len(events) == sum(changed.values())
    assert len({e.event_id for e in events}) == len(events)


def test_a_first_scoring_announces_where_the_customer_starts() -> None:
    start = Standing("selection", "low_value", "prospect", None, "low")
    events = transitions("cus_1", None, start, revision=1, at=AT)
    assert [(e.type, getattr(e, "dimension", None)) for e in events] == [
        ("stage_changed", None),
        ("segment_changed", "value_tier"),
        ("segment_changed", "ladder_step"),
        ("segment_changed", "churn_risk"),
    ]
    assert all(getattr(e, "direction", None) is None for e in events)  # a start, not a move


@pytest.mark.parametrize(
    ("before", "after", "dimension", "direction"),
    [
        (
            ("low_value", "customer", "low"),
            ("most_valuable", "customer", "low"),
            "value_tier",
            "up",
        ),
        (("potential", "client", "low"), ("potential", "supporter", "low"), "ladder_step", "up"),
        (("potential", "advocate", "low"), ("potential", "client", "low"), "ladder_step", "down"),
        (("potential", "client", "medium"), ("potential", "client", "high"), "churn_risk", "up"),
        (("potential", "client", "high"), ("potential", "client", "low"), "churn_risk", "down"),
    ],
)
def test_a_move_in_a_ranked_dimension_says_which_way(
    before: tuple[str, str, str], after: tuple[str, str, str], dimension: str, direction: str
) -> None:
    def standing(tier: str, step: str, band: str) -> Standing:
        return Standing("retention", tier, step, "loyal", band)  # type: ignore[arg-type]

    [event] = transitions("cus_1", standing(*before), standing(*after), revision=2, at=AT)
    assert isinstance(event, SegmentChanged)
    assert (event.dimension, event.direction) == (dimension, direction)


def test_rfm_segments_have_no_direction() -> None:
    a = Standing("retention", "potential", "client", "loyal", "low")
    b = Standing("retention", "potential", "client", "at_risk", "low")
    [event] = transitions("cus_1", a, b, revision=2, at=AT)
    assert isinstance(event, SegmentChanged)
    assert event.direction is None


def test_returning_to_a_segment_later_is_a_new_event() -> None:
    a = Standing("retention", "potential", "client", "loyal")
    b = Standing("retention", "most_valuable", "client", "loyal")
    first = transitions("cus_1", a, b, revision=3, at=AT)
    back = transitions("cus_1", b, a, revision=4, at=AT)
    again = transitions("cus_1", a, b, revision=5, at=AT)
    assert first[0].event_id != again[0].event_id
    assert back[0].to_segment == "potential"  # type: ignore[union-attr]

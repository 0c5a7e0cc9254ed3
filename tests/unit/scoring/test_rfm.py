"""RFM scores and segments: a total table without dead rules, and scores that rank as promised."""

from collections import Counter
from itertools import product
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.rfm import (
    SCORES,
    SEGMENT_OF,
    SEGMENT_RULES,
    RfmSegment,
    bounds_of,
    quintile_bounds,
    score,
)

values = st.lists(st.integers(0, 400).map(float), min_size=1, max_size=60)


def test_every_one_of_the_125_cells_has_exactly_one_segment_and_every_segment_a_cell() -> None:
    assert set(SEGMENT_OF) == set(product(SCORES, repeat=3))
    assert set(SEGMENT_OF.values()) == set(get_args(RfmSegment))
    assert sorted(name for name, _ in SEGMENT_RULES) == sorted(
        get_args(RfmSegment)
    )  # one rule each


def test_no_rule_is_dead_each_decides_a_cell_no_earlier_rule_took() -> None:
    decided: set[tuple[int, ...]] = set()
    for segment, rule in SEGMENT_RULES:
        mine = {cell for cell in product(SCORES, repeat=3) if rule(*cell)} - decided
        assert mine, f"the rule for {segment} can never match"
        decided |= mine
    assert len(decided) == 125


def test_segments_mean_what_a_marketer_expects() -> None:
    assert SEGMENT_OF[(5, 5, 5)] == "champions"
    assert SEGMENT_OF[(5, 1, 1)] == "new_customers"
    assert SEGMENT_OF[(1, 1, 1)] == "lost"
    assert SEGMENT_OF[(1, 5, 5)] == "cant_lose_them"
    assert SEGMENT_OF[(2, 3, 2)] == "at_risk"
    assert Counter(SEGMENT_OF.values())["champions"] == 8  # R, F and M all 4 or 5


def test_distinct_values_fall_into_five_equal_quintiles() -> None:
    bounds = bounds_of(range(100), range(100), range(100))
    scores = Counter(score(bounds, v, v, v).frequency for v in range(100))
    assert scores == dict.fromkeys(SCORES, 20)
    recency = Counter(score(bounds, v, v, v).recency for v in range(100))
    assert recency == dict.fromkeys(SCORES, 20)


@given(values)
def test_equal_values_score_alike_and_the_bounds_ignore_order(data: list[float]) -> None:
    assert quintile_bounds(data) == quintile_bounds(list(reversed(data)))
    bounds = bounds_of(data, data, data)
    for value in data:
        assert score(bounds, value, value, value) == score(bounds, value, value, value)
    # A value equal to a bound belongs to the lower quintile.
    for k, bound in enumerate(bounds.frequency, start=1):
        assert score(bounds, 0, bound, 0).frequency <= k


@given(values, st.floats(0, 500), st.floats(0, 500))
def test_scores_rank_as_promised(data: list[float], low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    bounds = bounds_of(data, data, data)
    lesser, greater = score(bounds, low, low, low), score(bounds, high, high, high)
    assert greater.frequency >= lesser.frequency  # more orders never score lower
    assert greater.monetary >= lesser.monetary
    assert greater.recency <= lesser.recency  # more days since the last order never score higher
    assert all(1 <= s <= 5 for s in (lesser.recency, lesser.frequency, lesser.monetary))

"""The overview's figures over time: levels take the range's last day, flows sum its days,
the previous period is as long and ends the day before; missing days are gaps, not zeros."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.analytics.figures import (
    ALL_CURRENCIES,
    DateRange,
    Figure,
    FigureKind,
    trend,
)
from services.scoring.domain.analytics.overview import OVERVIEW, overview, rates, running_totals
from services.scoring.domain.analytics.segments import Move, move_figure, moves, segments

LEVEL = Figure("customers", FigureKind.LEVEL, False, "Customers")
FLOW = Figure("revenue", FigureKind.FLOW, True, "Revenue")
DAY = date(2026, 12, 2)


def test_the_previous_period_is_as_long_and_ends_the_day_before() -> None:
    period = DateRange(date(2026, 11, 3), date(2026, 12, 2))
    assert period.days == 30
    assert period.previous() == DateRange(date(2026, 10, 4), date(2026, 11, 2))
    with pytest.raises(ValueError, match="ends"):
        DateRange(DAY, DAY - timedelta(days=1))


def test_a_level_is_its_last_snapshot_in_the_range() -> None:
    by_day = {DAY - timedelta(days=9): 80.0, DAY - timedelta(days=2): 100.0}
    found = trend(LEVEL, by_day, DateRange(DAY - timedelta(days=4), DAY))
    assert (found.value, found.previous) == (100.0, 80.0)
    assert found.change == pytest.approx(0.25)
    assert found.series == [
        (DAY - timedelta(days=4), None),
        (DAY - timedelta(days=3), None),
        (DAY - timedelta(days=2), 100.0),
        (DAY - timedelta(days=1), None),
        (DAY, None),
    ]


def test_a_flow_sums_its_days_against_the_previous_periods_sum() -> None:
    by_day = {DAY: 30.0, DAY - timedelta(days=1): 20.0, DAY - timedelta(days=2): 10.0}
    found = trend(FLOW, by_day, DateRange(DAY - timedelta(days=1), DAY))
    assert (found.value, found.previous) == (50.0, 10.0)
    assert found.change == pytest.approx(4.0)


def test_no_change_is_claimed_from_nothing_or_from_zero() -> None:
    period = DateRange(DAY, DAY)
    assert trend(FLOW, {DAY: 5.0}, period).change is None
    assert trend(FLOW, {DAY: 5.0, DAY - timedelta(days=1): 0.0}, period).change is None
    empty = trend(LEVEL, {}, period)
    assert (empty.value, empty.previous, empty.series) == (None, None, [(DAY, None)])


def test_the_overview_takes_money_in_the_chosen_currency_and_counts_for_all() -> None:
    rows = [
        (DAY, "EUR", "revenue", 100.0),
        (DAY, "USD", "revenue", 999.0),
        (DAY, ALL_CURRENCIES, "customers", 7.0),
        (DAY, "EUR", "customers", 123.0),  # not a money figure: ignored in a currency
    ]
    figures = {t.figure.name: t for t in overview(rows, DateRange(DAY, DAY), "EUR")}
    assert [f.name for f in OVERVIEW] == list(figures)
    assert figures["revenue"].value == 100.0
    assert figures["customers"].value == 7.0
    assert figures["buyers"].value is None


@given(
    values=st.dictionaries(
        st.integers(min_value=0, max_value=59), st.floats(min_value=0, max_value=1e9), max_size=60
    ),
    length=st.integers(min_value=1, max_value=30),
)
def test_a_flow_over_a_range_is_the_sum_of_its_series(
    values: dict[int, float], length: int
) -> None:
    by_day = {DAY - timedelta(days=n): v for n, v in values.items()}
    found = trend(FLOW, by_day, DateRange(DAY - timedelta(days=length - 1), DAY))
    points = [v for _, v in found.series if v is not None]
    assert found.value == (pytest.approx(sum(points)) if points else None)
    assert len(found.series) == length


def test_segments_follow_each_segment_and_the_rfm_grid_is_the_last_snapshot() -> None:
    yesterday = DAY - timedelta(days=1)
    rows = [
        (yesterday, ALL_CURRENCIES, "customers:value_tier:most_valuable", 2.0),
        (DAY, ALL_CURRENCIES, "customers:value_tier:most_valuable", 3.0),
        (DAY, ALL_CURRENCIES, "customers:value_tier:low_value", 9.0),
        (DAY, "EUR", "clv_historical:value_tier:most_valuable", 900.0),
        (DAY, "USD", "clv_historical:value_tier:most_valuable", 5.0),  # another currency
        (yesterday, ALL_CURRENCIES, "customers:rfm_grid:r5f1", 1.0),
        (DAY, ALL_CURRENCIES, "customers:rfm_grid:r5f1", 4.0),
        (DAY, ALL_CURRENCIES, "customers:rfm_grid:r1f5", 2.0),
        (DAY, "EUR", "clv_historical:rfm_grid:r5f1", 120.0),
        (DAY - timedelta(days=9), ALL_CURRENCIES, "customers:value_tier:potential", 1.0),
    ]
    found = segments(rows, DateRange(yesterday, DAY), "EUR")
    tiers = found.dimensions["value_tier"]
    assert [t.segment for t in tiers] == ["low_value", "most_valuable"]  # largest first
    best = tiers[1]
    assert best.customers == [(yesterday, 2.0), (DAY, 3.0)]
    assert best.value == [(yesterday, None), (DAY, 900.0)]
    assert (best.latest_customers, best.latest_value) == (3.0, 900.0)
    assert found.dimensions["ladder_step"] == []
    assert found.rfm.day == DAY
    assert found.rfm.customers[4][0] == 4.0  # recency 5, frequency 1
    assert found.rfm.customers[0][4] == 2.0
    assert found.rfm.value[4][0] == 120.0
    assert sum(map(sum, found.rfm.customers)) == 6.0


def test_no_snapshot_gives_an_empty_grid_not_an_error() -> None:
    found = segments([], DateRange(DAY, DAY), "EUR")
    assert found.rfm.day is None
    assert found.rfm.customers == [[0.0] * 5 for _ in range(5)]
    assert all(trends == [] for trends in found.dimensions.values())


def test_moves_sum_the_ranges_days_per_pair_of_segments_largest_first() -> None:
    period = DateRange(DAY - timedelta(days=1), DAY)
    rows = [
        (DAY, ALL_CURRENCIES, move_figure("rfm_segment", "new", "loyal"), 3.0),
        (DAY - timedelta(days=1), ALL_CURRENCIES, move_figure("rfm_segment", "new", "loyal"), 2.0),
        (DAY, ALL_CURRENCIES, move_figure("rfm_segment", "loyal", "new"), 1.0),
        (DAY, ALL_CURRENCIES, move_figure("ladder_step", "prospect", "first_order"), 4.0),
        # Outside the range, or not a move: not counted.
        (DAY - timedelta(days=2), ALL_CURRENCIES, move_figure("rfm_segment", "new", "loyal"), 9.0),
        (DAY, ALL_CURRENCIES, "customers:rfm_segment:new", 7.0),
        (DAY, ALL_CURRENCIES, move_figure("value_tier", "bronze", "silver"), 5.0),
    ]
    found = moves(rows, period)
    assert found == {
        "rfm_segment": [Move("new", "loyal", 5.0), Move("loyal", "new", 1.0)],
        "ladder_step": [Move("prospect", "first_order", 4.0)],
    }
    assert moves([], period) == {"rfm_segment": [], "ladder_step": []}


def test_running_totals_carry_each_day_forward_up_to_the_last() -> None:
    added = {
        DAY - timedelta(days=3): 2.0,
        DAY - timedelta(days=1): 1.0,
        DAY + timedelta(days=1): 9.0,
    }
    assert running_totals(added, DAY) == {
        DAY - timedelta(days=3): 2.0,
        DAY - timedelta(days=2): 2.0,
        DAY - timedelta(days=1): 3.0,
        DAY: 3.0,
    }
    assert running_totals({}, DAY) == {}
    assert rates({DAY: 1.0}, {DAY: 4.0, DAY - timedelta(days=1): 0.0}) == {DAY: 0.25}


@given(st.dictionaries(st.integers(0, 60), st.integers(0, 50), max_size=20))
def test_a_running_total_ends_at_the_sum_and_never_falls(added: dict[int, int]) -> None:
    by_day = {DAY - timedelta(days=back): float(n) for back, n in added.items()}
    totals = running_totals(by_day, DAY)
    values = list(totals.values())
    assert values == sorted(values)
    assert (values[-1] if values else 0.0) == sum(by_day.values())

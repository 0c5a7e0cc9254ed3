"""The Lifecycle page's figures: stages as levels over time, the funnel (furthest step
reached, conversions from the step before and from the visits) and the cohort retention
triangle (shares of each first-order month's customers ordering in each month since)."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.analytics.figures import DateRange
from services.scoring.domain.analytics.lifecycle import (
    FUNNEL_STEPS,
    STAGES,
    first_seen_on,
    funnel,
    funnel_counts,
    funnel_figure,
    furthest_step,
    lifecycle,
    months_between,
    retention_cells,
    retention_figure,
    stage_figure,
)
from services.scoring.domain.profile_view import ActivityView, CommerceView, ScoredProfile

DAY = date(2026, 12, 2)
PERIOD = DateRange(DAY - timedelta(days=6), DAY)

# (furthest step reached, customers)
PROGRESS = st.tuples(
    st.integers(min_value=0, max_value=len(FUNNEL_STEPS) - 1),
    st.integers(min_value=0, max_value=1000),
)


def _profile(
    views: int = 0, adds: int = 0, starts: int = 0, orders: int = 0, seen: datetime | None = None
) -> ScoredProfile:
    return ScoredProfile(
        customer_id="c1",
        revision=1,
        updated_at=datetime(2026, 12, 2, tzinfo=UTC),
        activity=ActivityView(
            first_seen_at=seen, product_views=views, cart_adds=adds, checkouts_started=starts
        ),
        commerce=CommerceView(orders_count=orders),
    )


def test_stages_come_in_lifecycle_order_with_gaps_where_no_snapshot_was_taken() -> None:
    rows = [
        (DAY, "", stage_figure("lapsed").name, 3.0),
        (DAY, "", stage_figure("selection").name, 10.0),
        (DAY - timedelta(days=1), "", stage_figure("selection").name, 8.0),
        (DAY - timedelta(days=8), "", stage_figure("selection").name, 4.0),  # previous period
        (DAY, "EUR", stage_figure("retention").name, 99.0),  # not a count: ignored
    ]
    found = lifecycle(rows, PERIOD).stages
    assert [t.figure.name for t in found] == [
        f"customers:lifecycle_stage:{s}"
        for s in ("selection", "acquisition", "retention", "expansion", "lapsed")
    ]
    selection, acquisition, retention, _, lapsed = found
    assert (selection.value, selection.previous, selection.change) == (10.0, 4.0, 1.5)
    assert selection.series[-2:] == [(DAY - timedelta(days=1), 8.0), (DAY, 10.0)]
    assert selection.series[0] == (PERIOD.start, None)
    assert (acquisition.value, retention.value, lapsed.value) == (None, None, 3.0)
    assert selection.figure.title == "Selection"


def test_the_furthest_step_is_the_last_one_taken_even_without_the_steps_before() -> None:
    assert furthest_step(_profile()) == 0  # only visited
    assert furthest_step(_profile(views=3)) == 1
    assert furthest_step(_profile(views=3, adds=1)) == 2
    assert furthest_step(_profile(adds=1)) == 2  # a cart without a product view sent
    assert furthest_step(_profile(views=1, adds=1, starts=2)) == 3
    assert furthest_step(_profile(views=1, adds=1, starts=1, orders=1)) == 4
    assert furthest_step(_profile(orders=2)) == 4  # an order with no step before it


def test_the_cohort_is_the_utc_day_of_the_first_visit() -> None:
    late_in_paris = datetime(2026, 11, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert first_seen_on(_profile(seen=late_in_paris)) == date(2026, 11, 1)
    assert first_seen_on(_profile()) is None


def test_a_customer_counts_at_every_step_up_to_the_furthest_they_reached() -> None:
    groups = [(0, 50), (1, 20), (2, 10), (3, 5), (4, 4), (4, 1), (2, 2)]
    assert funnel_counts(groups) == {
        "visit": 92,
        "product_view": 42,
        "cart": 22,
        "checkout": 10,
        "order": 5,
    }


def test_conversions_from_the_step_before_and_from_the_visits() -> None:
    steps = funnel({"visit": 200, "product_view": 100, "cart": 40, "checkout": 20, "order": 10})
    assert [s.step for s in steps] == list(FUNNEL_STEPS)
    assert [s.to_previous for s in steps] == [None, 0.5, 0.4, 0.5, 0.5]
    assert [s.overall for s in steps] == [1.0, 0.5, 0.2, 0.1, 0.05]
    assert [s.title for s in steps] == ["Visit", "Product view", "Cart", "Checkout", "Order"]


def test_missing_and_zero_steps_convert_to_nothing_rather_than_dividing_by_zero() -> None:
    empty = funnel({})
    assert [(s.customers, s.to_previous, s.overall) for s in empty] == [
        (0, None, None),
        (0, None, None),
        (0, None, None),
        (0, None, None),
        (0, None, None),
    ]
    stalled = funnel({"visit": 10, "product_view": 0, "order": 0})
    assert [s.to_previous for s in stalled] == [None, 0.0, None, None, None]
    assert [s.overall for s in stalled] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_the_funnel_sums_the_cohorts_first_seen_in_the_range() -> None:
    rows = [
        (DAY, "", funnel_figure("visit"), 10.0),
        (DAY, "", funnel_figure("order"), 2.0),
        (PERIOD.start, "", funnel_figure("visit"), 5.0),
        (PERIOD.start - timedelta(days=1), "", funnel_figure("visit"), 1000.0),  # before it
    ]
    steps = {s.step: s for s in lifecycle(rows, PERIOD).funnel}
    assert (steps["visit"].customers, steps["order"].customers) == (15.0, 2.0)
    assert steps["order"].to_previous is None  # no checkout counted: a missing step
    assert steps["order"].overall == pytest.approx(2 / 15)


@given(st.lists(PROGRESS, max_size=12))
def test_funnel_counts_never_grow_down_the_funnel_and_every_visitor_counts(
    groups: list[tuple[int, int]],
) -> None:
    counts = [funnel_counts(groups)[step] for step in FUNNEL_STEPS]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == sum(customers for _, customers in groups)


@given(st.lists(PROGRESS, max_size=12))
def test_the_overall_conversion_is_the_product_of_the_step_conversions(
    groups: list[tuple[int, int]],
) -> None:
    steps = funnel(funnel_counts(groups))
    product = 1.0
    for step in steps[1:]:
        if step.to_previous is None:
            assert step.customers == 0
            break
        assert 0 <= step.to_previous <= 1
        product *= step.to_previous
        assert step.overall == pytest.approx(product)


@given(st.lists(PROGRESS, max_size=6), st.lists(PROGRESS, max_size=6))
def test_the_funnel_of_two_cohorts_is_the_sum_of_their_funnels(
    first: list[tuple[int, int]], second: list[tuple[int, int]]
) -> None:
    together = funnel_counts(first + second)
    apart = (funnel_counts(first), funnel_counts(second))
    assert together == {step: apart[0][step] + apart[1][step] for step in FUNNEL_STEPS}


def test_each_cohort_has_a_cell_for_every_month_up_to_today_zero_where_nobody_ordered() -> None:
    active = [
        (date(2026, 10, 1), date(2026, 10, 1), 4),
        (date(2026, 10, 1), date(2026, 12, 1), 1),
        (date(2026, 12, 1), date(2026, 12, 1), 2),
    ]
    assert retention_cells(active, DAY) == [
        (date(2026, 10, 1), "retention:m0", 4.0),
        (date(2026, 10, 1), "retention:m1", 0.0),
        (date(2026, 10, 1), "retention:m2", 1.0),
        (date(2026, 12, 1), "retention:m0", 2.0),
    ]
    assert months_between(date(2025, 11, 1), date(2026, 2, 1)) == 3


def test_cohort_shares_are_of_the_cohorts_size_for_the_months_overlapping_the_range() -> None:
    rows = [
        (date(2026, 10, 1), "", retention_figure(0), 4.0),
        (date(2026, 10, 1), "", retention_figure(1), 0.0),
        (date(2026, 10, 1), "", retention_figure(2), 1.0),
        (date(2026, 11, 1), "", retention_figure(0), 5.0),
        (date(2026, 11, 1), "", retention_figure(1), 2.0),
        (date(2026, 12, 1), "", retention_figure(0), 2.0),
    ]
    # 2026-11-05 .. 2026-12-02: November's cohort (its month overlaps the range) and December's.
    found = lifecycle(rows, DateRange(date(2026, 11, 5), DAY)).cohorts
    assert [(c.month, c.customers, c.returning, c.shares) for c in found] == [
        (date(2026, 11, 1), 5.0, [5.0, 2.0], [1.0, 0.4]),
        (date(2026, 12, 1), 2.0, [2.0], [1.0]),
    ]
    october = lifecycle(rows, DateRange(date(2026, 10, 1), date(2026, 10, 31))).cohorts
    assert [(c.month, c.shares) for c in october] == [(date(2026, 10, 1), [1.0, 0.0, 0.25])]


@given(
    st.dictionaries(
        st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda c: c[0] <= c[1]),
        st.integers(1, 100),
    )
)
def test_every_cohort_starts_whole_and_its_shares_stay_between_0_and_1(
    counts: dict[tuple[int, int], int],
) -> None:
    def month(n: int) -> date:
        return date(2026, 1 + n, 1)

    # A cohort's size is its first month's count, never smaller than a later month's.
    sizes = {c: max(n for (c2, _), n in counts.items() if c2 == c) for c, _ in counts}
    active = [(month(c), month(m), sizes[c] if c == m else n) for (c, m), n in counts.items()]
    active += [(month(c), month(c), size) for c, size in sizes.items()]
    rows = [(day, "", name, value) for day, name, value in retention_cells(active, month(6))]
    cohorts = lifecycle(rows, DateRange(month(0), month(6))).cohorts
    assert [c.month for c in cohorts] == sorted(month(c) for c in sizes)
    for cohort in cohorts:
        assert cohort.shares[0] == 1.0
        assert all(0 <= share <= 1 for share in cohort.shares)
        assert len(cohort.shares) == months_between(cohort.month, month(6)) + 1


def test_no_rows_give_empty_stages_funnel_and_triangle_not_an_error() -> None:
    found = lifecycle([], PERIOD)
    assert [t.value for t in found.stages] == [None] * len(STAGES)
    assert [s.customers for s in found.funnel] == [0.0] * len(FUNNEL_STEPS)
    assert found.cohorts == []

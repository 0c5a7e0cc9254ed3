"""The Email page's figures: counted once per email and type, rates, last-click attribution."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.analytics.email import (
    DAILY_SERIES,
    Click,
    DayCount,
    EmailFact,
    Order,
    RangeTotal,
    attribute,
    attributed_figure,
    daily_counts,
    email_page,
    rate,
)
from services.scoring.domain.analytics.figures import DateRange

NOW = datetime(2026, 5, 10, 12, tzinfo=UTC)
WEEK = timedelta(days=7)
DAY = date(2026, 5, 10)


def order(at: datetime, order_id: str = "o1", revenue: float = 50.0) -> Order:
    return Order("c1", order_id, at, "EUR", revenue)


def click(at: datetime, journey: str = "welcome", template: str = "welcome_1") -> Click:
    return Click("c1", at, journey, template)


def test_an_order_exactly_the_window_after_a_click_is_attributed_one_a_moment_later_is_not() -> (
    None
):
    clicked = NOW - WEEK
    assert attribute([order(NOW)], [click(clicked)], WEEK) == {
        (DAY, "EUR", "welcome", "welcome_1"): (1, 50.0)
    }
    assert attribute([order(NOW + timedelta(seconds=1))], [click(clicked)], WEEK) == {}


def test_an_order_before_the_click_is_not_attributed() -> None:
    assert attribute([order(NOW - timedelta(minutes=1))], [click(NOW)], WEEK) == {}


def test_an_order_after_two_clicks_counts_once_for_the_last_one() -> None:
    clicks = [click(NOW - timedelta(days=3)), click(NOW - timedelta(days=1), "win_back", "wb_1")]
    found = attribute([order(NOW), order(NOW)], clicks, WEEK)  # the order told twice, too
    assert found == {(DAY, "EUR", "win_back", "wb_1"): (1, 50.0)}


def test_another_customers_click_brings_nothing() -> None:
    assert attribute([order(NOW)], [Click("c2", NOW, "welcome", "welcome_1")], WEEK) == {}


@given(
    st.lists(st.integers(min_value=-10 * 24, max_value=10 * 24), max_size=6),
    st.lists(st.integers(min_value=-10 * 24, max_value=10 * 24), min_size=1, max_size=6),
)
def test_each_order_is_attributed_at_most_once(
    order_hours: list[int], click_hours: list[int]
) -> None:
    orders = [order(NOW + timedelta(hours=h), f"o{n}", 10.0) for n, h in enumerate(order_hours)]
    clicks = [click(NOW + timedelta(hours=h), template=f"t{h}") for h in click_hours]
    found = attribute(orders, clicks, WEEK)
    counted = sum(count for count, _ in found.values())
    expected = sum(1 for o in orders if any(timedelta(0) <= o.at - c.at <= WEEK for c in clicks))
    assert counted == expected
    assert sum(revenue for _, revenue in found.values()) == 10.0 * expected


def fact(kind: str, at: datetime = NOW, nid: str = "n1", reason: str = "") -> EmailFact:
    return EmailFact(nid, kind, at, "welcome", "welcome_1", reason)


def test_a_fact_counts_once_on_the_day_it_first_happened() -> None:
    later = NOW + timedelta(days=1)
    facts = [fact("opened", later), fact("opened", NOW), fact("sent"), fact("sent", nid="n2")]
    first = {("n1", "opened"), ("n1", "sent")}  # n2's sent was counted before
    assert daily_counts(facts, first) == {
        (DAY, "welcome", "welcome_1", "opened", ""): 1,
        (DAY, "welcome", "welcome_1", "sent", ""): 1,
    }


def test_rates_with_nothing_sent_are_not_zero_but_unknown() -> None:
    assert rate(0, 0) is None
    assert rate(3, 0) is None
    assert rate(1, 4) == 0.25


def test_the_page_per_journey_and_template_with_suppressions_by_reason_and_orders() -> None:
    period = DateRange(DAY - timedelta(days=1), DAY)
    before = DAY - timedelta(days=2)  # out of the range
    counts = [
        (DAY, "welcome", "welcome_1", "sent", "", 4.0),
        (DAY, "welcome", "welcome_1", "opened", "", 2.0),
        (DAY - timedelta(days=1), "welcome", "welcome_1", "clicked", "", 1.0),
        (DAY, "welcome", "welcome_1", "suppressed", "no_consent", 2.0),
        (DAY, "welcome", "welcome_1", "suppressed", "frequency_cap", 1.0),
        (before, "welcome", "welcome_1", "sent", "", 100.0),
        (DAY, "win_back", "wb_1", "suppressed", "no_consent", 1.0),
    ]
    figures = [
        (DAY, "EUR", attributed_figure("orders", "welcome", "welcome_1"), 1.0),
        (DAY, "EUR", attributed_figure("revenue", "welcome", "welcome_1"), 80.0),
        (DAY, "USD", attributed_figure("orders", "welcome", "welcome_1"), 5.0),
        (DAY, "EUR", "revenue", 999.0),  # another page's figure
    ]
    page = email_page(*_store_sums(counts, period), figures, period, "EUR")
    welcome, win_back = page.rows
    assert (welcome.journey, welcome.template) == ("welcome", "welcome_1")
    assert welcome.totals.counts["sent"] == 4
    assert welcome.totals.counts["suppressed"] == 3
    assert welcome.totals.suppressed_by_reason == {"no_consent": 2, "frequency_cap": 1}
    assert (welcome.totals.open_rate, welcome.totals.click_rate) == (0.5, 0.25)
    assert (welcome.totals.orders, welcome.totals.revenue) == (1, 80.0)
    assert welcome.series["clicked"] == [(DAY - timedelta(days=1), 1.0), (DAY, 0.0)]
    assert welcome.series["orders"] == [(DAY - timedelta(days=1), 0.0), (DAY, 1.0)]
    assert win_back.totals.open_rate is None  # nothing sent: no rate
    assert page.totals.counts["suppressed"] == 4
    assert page.totals.suppressed_by_reason == {"no_consent": 3, "frequency_cap": 1}
    assert page.series["sent"] == [(DAY - timedelta(days=1), 0.0), (DAY, 4.0)]


def test_an_empty_page_has_zero_series_and_no_rows() -> None:
    period = DateRange(DAY, DAY)
    page = email_page([], [], [], period, "")
    assert page.rows == []
    assert page.series["sent"] == [(DAY, 0.0)]
    assert page.totals.open_rate is None


def _store_sums(
    counts: list[tuple[date, str, str, str, str, float]], period: DateRange
) -> tuple[list[RangeTotal], list[DayCount]]:
    """What the store's SQL sums from these daily counters over the range: each counter's
    total, and the charted types' counts per day."""
    inside = [c for c in counts if period.start <= c[0] <= period.end]
    totals: dict[tuple[str, str, str, str], float] = {}
    daily: dict[tuple[date, str, str, str], float] = {}
    for day, journey, template, kind, reason, count in inside:
        key = (journey, template, kind, reason)
        totals[key] = totals.get(key, 0.0) + count
        if kind in DAILY_SERIES:
            on_day = (day, journey, template, kind)
            daily[on_day] = daily.get(on_day, 0.0) + count
    return (
        [(*key, count) for key, count in totals.items()],
        [(*key, count) for key, count in daily.items()],
    )

"""The Channels page's figures: a range selects the months it touches; rows add up per channel,
campaign or affiliate and the rates come from the sums; customers counted in groups give what
they give one by one."""

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.analytics.channels import NONE, channel_lines, months_of
from services.scoring.domain.analytics.figures import DateRange
from services.scoring.domain.channels import Acquired, ChannelFigures, Spend, channel_figures

JAN, FEB, MAR = (datetime(2026, m, 10, tzinfo=UTC) for m in (1, 2, 3))
Q1 = DateRange(date(2026, 1, 15), date(2026, 2, 1))  # touches January and February


def test_a_range_selects_every_month_it_touches() -> None:
    assert months_of(DateRange(date(2026, 3, 1), date(2026, 3, 15))) == ["2026-03"]
    assert months_of(DateRange(date(2025, 11, 30), date(2026, 2, 1))) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]


def _row(month: str, **figures: Any) -> ChannelFigures:
    base = ChannelFigures("email", "spring", "ann", month, "EUR")
    return replace(base, **figures)


def test_rows_add_up_per_channel_and_the_rates_come_from_the_sums() -> None:
    rows = [
        _row("2026-01", touched=4, converted=2, new_customers=2, spend=Decimal(100),
             clv_historical=Decimal(300), clv_predicted=Decimal(100)),
        _row("2026-02", touched=6, converted=1, new_customers=3, spend=Decimal(20),
             clv_historical=Decimal(100), clv_predicted=Decimal(0)),
        replace(_row("2026-01", touched=5), campaign="autumn", affiliate=None),
        _row("2026-03", new_customers=50),  # outside the range
        replace(_row("2026-01", new_customers=7), currency="USD"),  # another currency
        replace(_row("2026-01", touched=10), currency=None),  # prospects: no currency yet
    ]  # fmt: skip
    [email] = channel_lines(rows, Q1, "EUR", "channel")
    assert (email.label, email.key) == ("email", ("email", None, None))
    total = email.total
    assert (total.touched, total.converted, total.new_customers) == (25, 3, 5)
    assert total.conversion_rate == 3 / 25
    assert total.spend == Decimal(120)
    assert total.cpa == Decimal("24.00")  # 120 / 5, not the mean of 50 and 6.67
    assert total.average_clv_historical == Decimal("80.00")
    assert total.clv_to_cpa == pytest.approx(100 / 24)
    assert [m.month for m in email.by_month] == ["2026-01", "2026-02"]
    assert [m.new_customers for m in email.by_month] == [2, 3]
    assert email.by_month[0].cpa == Decimal("50.00")


def test_campaigns_are_counted_per_channel_and_affiliates_alone() -> None:
    rows = [
        _row("2026-01", new_customers=1),
        replace(_row("2026-01", new_customers=4), channel="social"),
        replace(_row("2026-01", new_customers=2), campaign=None, affiliate=None),
    ]
    by_campaign = channel_lines(rows, Q1, "EUR", "campaign")
    assert [(line.label, line.total.new_customers) for line in by_campaign] == [
        ("spring · social", 4),
        ("(none) · email", 2),
        ("spring · email", 1),
    ]
    by_affiliate = channel_lines(rows, Q1, "EUR", "affiliate")
    assert [(line.label, line.total.new_customers) for line in by_affiliate] == [
        ("ann", 5),
        (NONE, 2),
    ]


def test_nothing_in_the_range_gives_no_lines() -> None:
    assert channel_lines([_row("2025-06", new_customers=3)], Q1, "EUR", "channel") == []


acquisitions = st.builds(
    Acquired,
    st.sampled_from([None, "email", "social"]),
    st.sampled_from([None, "spring"]),
    st.sampled_from([None, "ann"]),
    st.sampled_from([None, JAN, FEB]),
    st.sampled_from([None, FEB, MAR]),
    st.sampled_from([None, "EUR"]),
    st.integers(0, 10_000).map(Decimal),
    st.integers(0, 10_000).map(Decimal),
)


@given(st.lists(st.tuples(acquisitions, st.integers(1, 5)), max_size=12))
def test_customers_counted_in_groups_give_what_they_give_one_by_one(
    groups: list[tuple[Acquired, int]],
) -> None:
    spend = [Spend("email", None, "2026-02", Decimal("99.99"), "EUR")]
    one_by_one = [
        replace(a, clv_historical=a.clv_historical / n, clv_predicted=a.clv_predicted / n)
        for a, n in groups
        for _ in range(n)
    ]
    grouped = [replace(a, customers=n) for a, n in groups]
    expected = channel_figures(one_by_one, spend)
    found = channel_figures(grouped, spend)
    counts = [(f.channel, f.campaign, f.month, f.touched, f.new_customers, f.spend) for f in found]
    assert counts == [
        (f.channel, f.campaign, f.month, f.touched, f.new_customers, f.spend) for f in expected
    ]
    for ours, theirs in zip(found, expected, strict=True):
        assert ours.converted == theirs.converted
        assert float(ours.clv_historical) == pytest.approx(float(theirs.clv_historical))

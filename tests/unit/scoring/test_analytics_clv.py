"""The CLV page's histograms: fixed buckets, each value in exactly one, and the histogram of the
range's last snapshot in the currency."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.analytics.clv import (
    CLV_EDGES,
    bucket_figure,
    bucket_label,
    bucket_of,
    clv_histograms,
    repeat_labels,
)
from services.scoring.domain.analytics.figures import DateRange

DAY = date(2026, 12, 2)


@given(st.floats(0, 1e9, allow_nan=False))
def test_a_value_falls_in_the_one_bucket_from_its_lower_edge_to_the_next(value: float) -> None:
    bucket = bucket_of(value)
    assert CLV_EDGES[bucket] <= value
    if bucket + 1 < len(CLV_EDGES):
        assert value < CLV_EDGES[bucket + 1]


def test_the_edges_and_labels() -> None:
    assert [bucket_of(v) for v in (-5, 0, 9.99, 10, 150, 100_000, 1e7)] == [0, 0, 0, 1, 4, 13, 13]
    assert bucket_label(0) == "0-10"
    assert bucket_label(7) == "1,000-2,000"
    assert bucket_label(len(CLV_EDGES) - 1) == "100,000+"
    names = {bucket_figure(k, b) for k in ("historical", "predicted") for b in range(14)}
    assert len(names) == 28
    assert bucket_figure("predicted", 13) == "clv_histogram:predicted:100000"
    assert max(map(len, names)) <= 64


def test_the_histograms_are_the_range_s_last_snapshot_in_the_currency() -> None:
    earlier, last = DAY - timedelta(days=3), DAY - timedelta(days=1)
    rows = [
        (earlier, "EUR", bucket_figure("historical", 2), 9.0),
        (last, "EUR", bucket_figure("historical", 2), 4.0),
        (last, "EUR", bucket_figure("predicted", 0), 3.0),
        (last, "USD", bucket_figure("historical", 5), 8.0),  # another currency
        (DAY + timedelta(days=1), "EUR", bucket_figure("historical", 1), 1.0),  # after the range
        (last, "", "customers", 12.0),  # another figure
    ]
    found = clv_histograms(rows, DateRange(DAY - timedelta(days=6), DAY), "EUR")
    assert found.day == last
    assert found.customers["historical"] == [0, 0, 4.0] + [0] * 11
    assert found.customers["predicted"] == [3.0] + [0] * 13


def test_no_snapshot_gives_empty_histograms() -> None:
    found = clv_histograms([], DateRange(DAY, DAY), "EUR")
    assert found.day is None
    assert found.customers == {"historical": [0.0] * 14, "predicted": [0.0] * 14}


def test_the_calibration_s_last_category_is_or_more() -> None:
    assert repeat_labels(7) == ["0", "1", "2", "3", "4", "5", "6+"]

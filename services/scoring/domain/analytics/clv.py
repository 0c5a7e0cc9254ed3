"""The CLV page's figures: how historical and predicted CLV are distributed, per currency.

The histogram's buckets are fixed, roughly logarithmic edges in currency units (0, 10, 20, 50,
100, 200, 500, ... 100,000, then "100,000 or more"), the same every day and in every currency,
so a day's histogram compares with any other's. A bucket holds the values from its lower edge
up to, not including, the next; a negative value (refunds beyond the orders) counts in the
first. Only customers with orders are counted: a prospect's CLV is nothing to distribute.
"""

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.scoring.domain.analytics.figures import DateRange

CLV_EDGES: tuple[float, ...] = (
    0, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
)  # fmt: skip
CLV_KINDS = ("historical", "predicted")


def bucket_of(value: float) -> int:
    """The index of the bucket `value` falls in."""
    return max(bisect_right(CLV_EDGES, value) - 1, 0)


def bucket_figure(kind: str, bucket: int) -> str:
    """The daily figure of one bucket: customers whose `kind` CLV falls in it (a name of its own,
    apart from the segments' customers:dimension:segment)."""
    return f"clv_histogram:{kind}:{CLV_EDGES[bucket]:g}"


def bucket_label(bucket: int) -> str:
    lower = CLV_EDGES[bucket]
    if bucket == len(CLV_EDGES) - 1:
        return f"{lower:,.0f}+"
    return f"{lower:,.0f}-{CLV_EDGES[bucket + 1]:,.0f}"


@dataclass(frozen=True, slots=True)
class ClvHistograms:
    day: date | None  # the snapshot they are from: the range's last day with one
    customers: dict[str, list[float]]  # per kind, customers per bucket


def clv_histograms(
    rows: Iterable[tuple[date, str, str, float]], period: DateRange, currency: str
) -> ClvHistograms:
    """The histograms of the range's last snapshot in `currency` (all zero without one)."""
    names = {
        bucket_figure(kind, bucket): (kind, bucket)
        for kind in CLV_KINDS
        for bucket in range(len(CLV_EDGES))
    }
    by_day: dict[date, dict[tuple[str, int], float]] = {}
    for day, row_currency, name, value in rows:
        if row_currency == currency and name in names and period.start <= day <= period.end:
            by_day.setdefault(day, {})[names[name]] = value
    last = max(by_day) if by_day else None
    found = by_day[last] if last else {}
    customers = {
        kind: [found.get((kind, bucket), 0.0) for bucket in range(len(CLV_EDGES))]
        for kind in CLV_KINDS
    }
    return ClvHistograms(last, customers)


def repeat_labels(counts: int) -> list[str]:
    """The calibration chart's categories: 0, 1, ... and the last one "or more"."""
    return [str(n) for n in range(counts - 1)] + [f"{counts - 1}+"]

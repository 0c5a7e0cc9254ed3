"""The dashboard's figures over time, from daily snapshots: each figure's series over a date
range, its value for the range, and the change against the period just before.

Two kinds of figure:

- a *level* is measured at the end of a day (customers, buyers, average CLV, repeat rate,
  churn risk): the range's value is the last day's, compared with the last day of the
  previous period;
- a *flow* is an amount per day (revenue): the range's value is the sum of its days,
  compared with the sum over the previous period.

The previous period has the same number of days and ends the day before the range starts. A
day without a snapshot has no point in a level's series (a gap, never a made-up zero) and
adds nothing to a flow.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

ALL_CURRENCIES = ""  # the currency of a figure that is not an amount (a count, a rate)


class FigureKind(StrEnum):
    LEVEL = "level"
    FLOW = "flow"


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    kind: FigureKind
    money: bool  # an amount in a currency; otherwise a count or a rate, for all currencies
    title: str


OVERVIEW = (
    Figure("customers", FigureKind.LEVEL, False, "Customers"),
    Figure("buyers", FigureKind.LEVEL, False, "Buyers"),
    Figure("revenue", FigureKind.FLOW, True, "Revenue"),
    Figure("clv_historical", FigureKind.LEVEL, True, "Average historical CLV"),
    Figure("clv_predicted", FigureKind.LEVEL, True, "Average predicted CLV"),
    Figure("repeat_rate", FigureKind.LEVEL, False, "Repeat rate"),
    Figure("churn_risk", FigureKind.LEVEL, False, "Average churn risk"),
)


@dataclass(frozen=True, slots=True)
class DateRange:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the range ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "DateRange":
        """The period of as many days that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return DateRange(end - timedelta(days=self.days - 1), end)

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]


@dataclass(frozen=True, slots=True)
class FigureTrend:
    figure: Figure
    value: float | None  # the range's value (None: no snapshot in the range)
    previous: float | None  # the previous period's
    change: float | None  # relative change, value / previous - 1 (None when not defined)
    series: list[tuple[date, float | None]]  # one point per day of the range


def trend(figure: Figure, by_day: Mapping[date, float], period: DateRange) -> FigureTrend:
    """`figure` over `period` from its daily values (days missing: no snapshot)."""
    value = _over(figure, by_day, period)
    previous = _over(figure, by_day, period.previous())
    change = None
    if value is not None and previous:  # no change from nothing or from zero
        change = value / previous - 1
    series = [(day, by_day.get(day)) for day in period.each_day()]
    return FigureTrend(figure, value, previous, change, series)


def _over(figure: Figure, by_day: Mapping[date, float], period: DateRange) -> float | None:
    days = [day for day in period.each_day() if day in by_day]
    if not days:
        return None
    if figure.kind is FigureKind.FLOW:
        return sum(by_day[day] for day in days)
    return by_day[days[-1]]


def overview(
    rows: Iterable[tuple[date, str, str, float]], period: DateRange, currency: str
) -> list[FigureTrend]:
    """Every overview figure's trend from snapshot rows (day, currency, figure, value): money
    figures in `currency`, the others for all currencies."""
    wanted = {f.name: (currency if f.money else ALL_CURRENCIES) for f in OVERVIEW}
    by_figure: dict[str, dict[date, float]] = {f.name: {} for f in OVERVIEW}
    for day, row_currency, name, value in rows:
        if wanted.get(name) == row_currency:
            by_figure[name][day] = value
    return [trend(f, by_figure[f.name], period) for f in OVERVIEW]


# ---------------------------------------------------------------- segments

SEGMENT_DIMENSIONS = ("value_tier", "rfm_segment", "ladder_step", "lifecycle_stage")
RFM_GRID = "rfm_grid"  # cells r<recency>f<frequency>, 1..5 each
SCORES = range(1, 6)


def segment_figure(measure: str, dimension: str, segment: str) -> str:
    """The daily figure of one segment: `measure` is customers or clv_historical."""
    return f"{measure}:{dimension}:{segment}"


def rfm_cell(recency: int, frequency: int) -> str:
    return f"r{recency}f{frequency}"


@dataclass(frozen=True, slots=True)
class SegmentTrend:
    segment: str
    customers: list[tuple[date, float | None]]  # one point per day of the range
    value: list[tuple[date, float | None]]  # historical CLV summed, in the currency
    latest_customers: float | None
    latest_value: float | None


@dataclass(frozen=True, slots=True)
class RfmGrid:
    day: date | None  # the snapshot the grid is from: the range's last day with one
    customers: list[list[float]]  # [recency - 1][frequency - 1]
    value: list[list[float]]


@dataclass(frozen=True, slots=True)
class Segments:
    dimensions: dict[str, list[SegmentTrend]]
    rfm: RfmGrid


def segments(
    rows: Iterable[tuple[date, str, str, float]], period: DateRange, currency: str
) -> Segments:
    """Each dimension's segments over `period` (customers for all currencies, value in
    `currency`), largest last first, and the R x F grid of the range's last snapshot."""
    days = set(period.each_day())
    series: dict[tuple[str, str, str], dict[date, float]] = {}
    for day, row_currency, name, value in rows:
        measure, _, rest = name.partition(":")
        dimension, _, segment = rest.partition(":")
        wanted = ALL_CURRENCIES if measure == "customers" else currency
        if day in days and row_currency == wanted and measure in ("customers", "clv_historical"):
            series.setdefault((dimension, segment, measure), {})[day] = value
    each_day = period.each_day()

    def points(dimension: str, segment: str, measure: str) -> list[tuple[date, float | None]]:
        by_day = series.get((dimension, segment, measure), {})
        return [(day, by_day.get(day)) for day in each_day]

    def latest(found: list[tuple[date, float | None]]) -> float | None:
        present = [value for _, value in found if value is not None]
        return present[-1] if present else None

    dimensions: dict[str, list[SegmentTrend]] = {}
    for dimension in SEGMENT_DIMENSIONS:
        names = sorted({s for d, s, _ in series if d == dimension})
        trends = []
        for segment in names:
            counts = points(dimension, segment, "customers")
            worth = points(dimension, segment, "clv_historical")
            trends.append(SegmentTrend(segment, counts, worth, latest(counts), latest(worth)))
        trends.sort(key=lambda t: (-(t.latest_customers or 0), t.segment))
        dimensions[dimension] = trends
    return Segments(dimensions, _rfm_grid(series))


def _rfm_grid(series: Mapping[tuple[str, str, str], Mapping[date, float]]) -> RfmGrid:
    cells = {key: by_day for key, by_day in series.items() if key[0] == RFM_GRID}
    snapshot_days = {day for by_day in cells.values() for day in by_day}
    day = max(snapshot_days) if snapshot_days else None

    def grid(measure: str) -> list[list[float]]:
        return [
            [
                cells.get((RFM_GRID, rfm_cell(r, f), measure), {}).get(day, 0.0) if day else 0.0
                for f in SCORES
            ]
            for r in SCORES
        ]

    return RfmGrid(day, grid("customers"), grid("clv_historical"))

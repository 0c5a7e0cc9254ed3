"""The Segments page's figures: each segment's size and value over time per dimension (value
tier, RFM segment, loyalty ladder step, lifecycle stage), and the RFM recency x frequency grid."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from services.scoring.domain.analytics.figures import ALL_CURRENCIES, DateRange

SEGMENT_DIMENSIONS = ("value_tier", "rfm_segment", "ladder_step", "lifecycle_stage")
RFM_GRID = "rfm_grid"  # cells r<recency>f<frequency>, 1..5 each
SCORES = range(1, 6)
# The names of the page's figures, as SQL LIKE patterns.
SEGMENTS_PAGE_FIGURES = ("customers:%", "clv_historical:%", "moves:%")


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


# ---------------------------------------------------------------- moves between segments

MOVE_DIMENSIONS = ("rfm_segment", "ladder_step")


def move_figure(dimension: str, before: str, after: str) -> str:
    """The daily figure counting moves from segment `before` to `after` of a dimension."""
    return f"moves:{dimension}:{before}>{after}"


@dataclass(frozen=True, slots=True)
class Move:
    before: str
    after: str
    customers: float


def moves(rows: Iterable[tuple[date, str, str, float]], period: DateRange) -> dict[str, list[Move]]:
    """Per dimension, the moves between segments made on the range's days: how many from each
    segment to each other, largest first. A customer who moved twice counts in both moves; a
    move and its way back are both shown."""
    days = set(period.each_day())
    counted: dict[tuple[str, str, str], float] = {}
    for day, currency, name, value in rows:
        measure, _, rest = name.partition(":")
        if measure != "moves" or day not in days or currency != ALL_CURRENCIES:
            continue
        dimension, _, move = rest.partition(":")
        before, _, after = move.partition(">")
        key = (dimension, before, after)
        counted[key] = counted.get(key, 0.0) + value
    found: dict[str, list[Move]] = {dimension: [] for dimension in MOVE_DIMENSIONS}
    for (dimension, before, after), customers in counted.items():
        if dimension in found and customers:
            found[dimension].append(Move(before, after, customers))
    for listed in found.values():
        listed.sort(key=lambda m: (-m.customers, m.before, m.after))
    return found

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

from collections.abc import Mapping
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

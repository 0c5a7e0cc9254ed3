"""The Overview page's figures: customers, buyers, revenue, average CLV, repeat rate and
churn risk, each with its trend."""

from collections.abc import Iterable, Mapping
from datetime import date

from services.scoring.domain.analytics.figures import (
    ALL_CURRENCIES,
    DateRange,
    Figure,
    FigureKind,
    FigureTrend,
    trend,
)

OVERVIEW = (
    Figure("customers", FigureKind.LEVEL, False, "Customers"),
    Figure("buyers", FigureKind.LEVEL, False, "Buyers"),
    Figure("revenue", FigureKind.FLOW, True, "Revenue"),
    Figure("clv_historical", FigureKind.LEVEL, True, "Average historical CLV"),
    Figure("clv_predicted", FigureKind.LEVEL, True, "Average predicted CLV"),
    Figure("repeat_rate", FigureKind.LEVEL, False, "Repeat rate"),
    Figure("churn_risk", FigureKind.LEVEL, False, "Average churn risk"),
)


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


def running_totals(added_by_day: Mapping[date, float], through: date) -> dict[date, float]:
    """A level's value at the end of every day from the first one anything was added up to
    `through`: the sum of what was added on or before it (customers first seen, buyers' first
    orders). Additions after `through` are left out."""
    if not added_by_day:
        return {}
    first = min(added_by_day)
    total, totals = 0.0, {}
    for day in DateRange(min(first, through), through).each_day():
        total += added_by_day.get(day, 0.0)
        totals[day] = total
    return totals


def rates(parts: Mapping[date, float], wholes: Mapping[date, float]) -> dict[date, float]:
    """parts / wholes on each day the whole is not zero (a repeat rate: repeat buyers over
    buyers)."""
    return {day: parts.get(day, 0.0) / whole for day, whole in wholes.items() if whole}

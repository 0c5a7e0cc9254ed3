"""RFM: recency, frequency and monetary scores 1 to 5, and the named segment of each score cell.

Scores are quintiles over the customers with orders, fixed at each refit as four bounds per
dimension (the values at 20, 40, 60 and 80% of the sorted values). A value is scored by how many
bounds lie below it, so customers with equal values always get the same score and a value equal
to a bound belongs to the lower quintile: ties are broken the same way every time, whatever the
order customers are seen in. Recency is days since the last order, where fewer is better (5 =
bought most recently); frequency is the number of orders; monetary is net revenue to date.

Segments: an ordered rule list, first match wins, expanded once into a table of all 125 cells
(`SEGMENT_OF`). Every cell has exactly one segment and every rule decides at least one cell
that no earlier rule did (tests/unit/scoring/test_rfm.py checks both).
"""

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Literal

RfmSegment = Literal[
    "champions",
    "loyal",
    "potential_loyalist",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
]
Cell = tuple[int, int, int]  # (recency, frequency, monetary) scores, 1 to 5

# First match wins. Each rule reads the scores of one cell.
SEGMENT_RULES: tuple[tuple[RfmSegment, Callable[[int, int, int], bool]], ...] = (
    # Bought recently, buy often, spend most.
    ("champions", lambda r, f, m: r >= 4 and f >= 4 and m >= 4),
    # Buy often and not long ago.
    ("loyal", lambda r, f, m: r >= 3 and f >= 4),
    # Were among the best (often, much) and have not bought for long: win them back first.
    ("cant_lose_them", lambda r, f, m: r <= 2 and f >= 4 and m >= 4),
    # Bought fairly often, but long ago.
    ("at_risk", lambda r, f, m: r <= 2 and f >= 3),
    # Their first orders, just now.
    ("new_customers", lambda r, f, m: r == 5 and f == 1),
    # Recent, one order so far.
    ("promising", lambda r, f, m: r == 4 and f == 1),
    # Recent and buying again.
    ("potential_loyalist", lambda r, f, m: r >= 4 and f in (2, 3)),
    # Average on both: a nudge now keeps them.
    ("need_attention", lambda r, f, m: r == 3 and f == 3),
    # Average recency, few orders: slipping away.
    ("about_to_sleep", lambda r, f, m: r == 3 and f <= 2),
    # Long ago, few orders.
    ("hibernating", lambda r, f, m: (r == 2 and f <= 2) or (r == 1 and f == 2)),
    # Longest ago, one order.
    ("lost", lambda r, f, m: r == 1 and f == 1),
)

SCORES = (1, 2, 3, 4, 5)


def _first_match(cell: Cell) -> RfmSegment:
    for segment, rule in SEGMENT_RULES:
        if rule(*cell):
            return segment
    raise ValueError(f"no RFM segment for {cell}")  # the table test rules this out


SEGMENT_OF: dict[Cell, RfmSegment] = {
    (r, f, m): _first_match((r, f, m)) for r, f, m in product(SCORES, repeat=3)
}


@dataclass(frozen=True)
class RfmBounds:
    """The quintile bounds of one refit: four increasing values per dimension."""

    recency_days: tuple[float, float, float, float]
    frequency: tuple[float, float, float, float]
    monetary: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class RfmScore:
    recency: int
    frequency: int
    monetary: int

    @property
    def segment(self) -> RfmSegment:
        return SEGMENT_OF[(self.recency, self.frequency, self.monetary)]


def quintile_bounds(values: Sequence[float]) -> tuple[float, float, float, float]:
    """The values at 20, 40, 60 and 80% of the sorted values (all zero for none)."""
    ordered = sorted(values)
    if not ordered:
        return (0.0, 0.0, 0.0, 0.0)
    n = len(ordered)
    at = [ordered[max(0, -(-n * k // 5) - 1)] for k in (1, 2, 3, 4)]
    return (float(at[0]), float(at[1]), float(at[2]), float(at[3]))


def bounds_of(
    recency_days: Sequence[float], frequency: Sequence[float], monetary: Sequence[float]
) -> RfmBounds:
    """The bounds for a refit, from the customers with orders."""
    return RfmBounds(
        quintile_bounds(recency_days), quintile_bounds(frequency), quintile_bounds(monetary)
    )


def _quintile(value: float, bounds: tuple[float, float, float, float]) -> int:
    """1 + how many bounds lie below the value: a value equal to a bound stays below it."""
    return 1 + bisect_left(bounds, value)


def score(bounds: RfmBounds, recency_days: float, frequency: float, monetary: float) -> RfmScore:
    return RfmScore(
        recency=6 - _quintile(recency_days, bounds.recency_days),  # fewer days, higher score
        frequency=_quintile(frequency, bounds.frequency),
        monetary=_quintile(monetary, bounds.monetary),
    )

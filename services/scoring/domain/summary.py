"""A customer's purchase history as the CLV models read it: frequency, recency, T, monetary value.

Defined exactly as the BG/NBD literature and the lifetimes package define it, in days:
- purchases are grouped by UTC calendar day (two orders on one day are one purchase day, their
  amounts summed);
- frequency = the number of purchase days after the first (repeat purchase days);
- recency = days from the first purchase day to the last; T = days from the first purchase
  day to the end of the observation period;
- monetary value = the mean amount of the repeat purchase days (0 when there are none): the
  first purchase is left out, as the Gamma-Gamma model requires;
- purchases after the end of the observation period are not seen.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Purchase:
    at: datetime  # aware, UTC
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    frequency: int
    recency: int
    T: int
    monetary_value: Decimal


def summarize(purchases: Iterable[Purchase], observation_end: date) -> CustomerSummary | None:
    """The summary of one customer's purchases; None when none falls before `observation_end`."""
    by_day: dict[date, Decimal] = {}
    for purchase in purchases:
        day = purchase.at.date()
        if day <= observation_end:
            by_day[day] = by_day.get(day, Decimal(0)) + purchase.amount
    if not by_day:
        return None
    days = sorted(by_day)
    first, last = days[0], days[-1]
    repeat = [by_day[day] for day in days[1:]]
    monetary = sum(repeat, Decimal(0)) / len(repeat) if repeat else Decimal(0)
    return CustomerSummary(
        frequency=len(repeat),
        recency=(last - first).days,
        T=(observation_end - first).days,
        monetary_value=monetary,
    )


@dataclass(frozen=True)
class Summaries:
    """Many customers' summaries as arrays, in the order of `customer_ids`."""

    customer_ids: Sequence[str]
    frequency: npt.NDArray[np.float64]
    recency: npt.NDArray[np.float64]
    T: npt.NDArray[np.float64]
    monetary_value: npt.NDArray[np.float64]

    @classmethod
    def of(cls, summaries: Mapping[str, CustomerSummary]) -> "Summaries":
        ids = sorted(summaries)
        rows = [summaries[customer_id] for customer_id in ids]
        return cls(
            customer_ids=ids,
            frequency=np.array([s.frequency for s in rows], dtype=np.float64),
            recency=np.array([s.recency for s in rows], dtype=np.float64),
            T=np.array([s.T for s in rows], dtype=np.float64),
            monetary_value=np.array([float(s.monetary_value) for s in rows], dtype=np.float64),
        )

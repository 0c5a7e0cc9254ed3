"""A refit: from every customer's orders to the model every customer is scored with until the
next one.

It fits BG/NBD and Gamma-Gamma over the customers with orders (each customer's orders in their
main currency, summarised as of the observation end), fixes the RFM quintile bounds, the
expected-value bound of the most valuable tier, and for expansion the co-purchase counts
(`recommend`) and the priced catalogue (`upgrades`). Given an observation end in the past
(`as_of`), the CLV models and the bounds do not see the orders after it: a backtest on
historical data such as CDNOW (co-purchases and the catalogue take the whole ledger).
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np

from services.scoring.domain.clv import FitSettings, fit, predict, repeat_calibration
from services.scoring.domain.recommend import co_purchases
from services.scoring.domain.rfm import bounds_of
from services.scoring.domain.score import LedgerOrder, ScoringModel
from services.scoring.domain.standing import StandingRules, top_value_bound
from services.scoring.domain.summary import CustomerSummary, Purchase, Summaries, summarize
from services.scoring.domain.upgrades import UpgradeRules, catalogue

SAMPLE_BUCKETS = 1024  # customers fall into this many buckets by a hash of their id


def sample_buckets(customers: int, cap: int) -> int:
    """How many of the SAMPLE_BUCKETS a refit reads so that about `cap` of `customers` with
    orders are fitted: all of them up to the cap. BG/NBD and Gamma-Gamma parameters, the RFM
    quintiles and the top-tier bound describe the population, and a uniform sample of a
    million customers pins them within about 1% (bench/scoring), at a fixed cost however large
    the customer base grows."""
    if customers <= cap:
        return SAMPLE_BUCKETS
    return max(1, math.ceil(SAMPLE_BUCKETS * cap / customers))


@dataclass(frozen=True)
class RefitSettings:
    horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    fit: FitSettings = field(default_factory=FitSettings)
    upgrades: UpgradeRules = field(default_factory=UpgradeRules)
    sample_customers: int = 2_000_000  # fit on a uniform sample past this many customers


def _main_currency_orders(orders: Sequence[LedgerOrder]) -> list[LedgerOrder]:
    counted = Counter(o.currency for o in orders)
    main = max(sorted(counted, key=str), key=counted.__getitem__)
    return [o for o in orders if o.currency == main]


def refit(
    ledger: Mapping[str, Sequence[LedgerOrder]],
    *,
    as_of: date,
    version: int,
    rules: StandingRules,
    settings: RefitSettings | None = None,
) -> ScoringModel:
    """The model of refit `version` from every customer's orders (oldest first)."""
    settings = settings or RefitSettings()
    summaries: dict[str, CustomerSummary] = {}
    spent: dict[str, float] = {}
    last_order: dict[str, date] = {}
    counts: dict[str, int] = {}
    for customer_id, orders in ledger.items():
        seen = [o for o in _main_currency_orders(orders) if o.at.date() <= as_of] if orders else []
        summary = summarize((Purchase(o.at, o.revenue) for o in seen), as_of)
        if summary is None:
            continue
        summaries[customer_id] = summary
        spent[customer_id] = float(sum((o.revenue for o in seen), Decimal(0)))
        last_order[customer_id] = max(o.at.date() for o in seen)
        counts[customer_id] = len(seen)
    table = Summaries.of(summaries)
    result = fit(table.frequency, table.recency, table.T, table.monetary_value, settings.fit)
    ids = table.customer_ids
    expected = np.array([spent[c] for c in ids], dtype=np.float64)
    if result.bgnbd is not None and result.gamma_gamma is not None:
        expected = (
            expected
            + predict(
                result.bgnbd,
                result.gamma_gamma,
                table.frequency,
                table.recency,
                table.T,
                table.monetary_value,
                months=settings.horizon_months,
                monthly_discount_rate=settings.monthly_discount_rate,
            ).lifetime_value
        )
    totals = [Decimal(repr(float(value))) for value in expected]
    baskets = (frozenset().union(*(o.products for o in orders)) for orders in ledger.values())
    return ScoringModel(
        version=version,
        co_purchases=co_purchases(baskets),
        catalogue=catalogue(ledger.values()),
        upgrade_rules=settings.upgrades,
        fit=result,
        rfm_bounds=bounds_of(
            [float((as_of - last_order[c]).days) for c in ids],
            [float(counts[c]) for c in ids],
            [spent[c] for c in ids],
        )
        if ids
        else None,
        top_value_bound=top_value_bound(totals, rules.top_share),
        horizon_months=settings.horizon_months,
        monthly_discount_rate=settings.monthly_discount_rate,
        calibration=repeat_calibration(result.bgnbd, table.frequency, table.T) if ids else None,
    )

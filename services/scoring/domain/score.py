"""Scoring one customer: from their profile, their orders and the current model to scores.v1.

- Historical CLV: net revenue to date plus the net revenue of the customers they referred, per
  currency (never summed across currencies); `clv_historical` is the amount in the customer's
  main currency.
- Predicted CLV over the model's horizon, from the customer's orders in their main currency
  (summarised as of today); 0 when the model is not fitted, with `model` saying why.
- Churn risk = 1 - P(alive) when the model is fitted; without one, 1 for a customer whose
  silence makes them lapsed, else 0.
- Expected next order: for a customer likely alive, today plus the expected wait for their
  next purchase, (alpha + T) / (r + frequency) days (the mean of their purchase rate's
  posterior, inverted).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.scores_v1 import CustomerScores, Rfm
from services.scoring.domain.clv import Fit, ModelStatus, predict
from services.scoring.domain.recommend import CoPurchases, recommend
from services.scoring.domain.rfm import RfmBounds, RfmSegment
from services.scoring.domain.rfm import score as rfm_score
from services.scoring.domain.standing import (
    CustomerFacts,
    Order,
    StandingRules,
    ladder_step,
    lifecycle_stage,
    value_tier,
)
from services.scoring.domain.summary import Purchase, summarize
from services.scoring.domain.transitions import Standing

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LedgerOrder:
    """An order as scoring keeps it (from lifecycle.v1 order_completed)."""

    order_id: str
    at: datetime
    revenue: Decimal
    currency: str | None
    categories: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScoringModel:
    """What a refit fixes; every customer is scored with it until the next refit."""

    version: int
    fit: Fit
    rfm_bounds: RfmBounds | None  # None before the first refit: no RFM scores yet
    top_value_bound: Decimal
    horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    co_purchases: CoPurchases = field(default_factory=CoPurchases)
    recommendations: int = 5  # per customer, in scores.v1


def _add(into: dict[str, Decimal], amounts: Mapping[str, Decimal]) -> None:
    for currency, amount in amounts.items():
        into[currency] = into.get(currency, Decimal(0)) + amount


def main_currency(profile: ProfileSnapshot, orders: Sequence[LedgerOrder]) -> str | None:
    if profile.commerce.currency:
        return profile.commerce.currency
    counted = Counter(o.currency for o in orders if o.currency)
    return max(sorted(counted), key=counted.__getitem__) if counted else None


def score_customer(
    profile: ProfileSnapshot,
    orders: Sequence[LedgerOrder],
    model: ScoringModel,
    rules: StandingRules,
    now: datetime,
) -> tuple[CustomerScores, Standing]:
    """The customer's scores.v1 record and standing; `orders` oldest first."""
    currency = main_currency(profile, orders)
    historical: dict[str, Decimal] = {}
    _add(historical, profile.commerce.revenue_by_currency)
    _add(historical, profile.referrals.revenue_by_currency)
    clv_historical = historical.get(currency, Decimal(0)) if currency else Decimal(0)
    mine = [o for o in orders if o.currency == currency or o.currency is None]
    summary = summarize((Purchase(o.at, o.revenue) for o in mine), now.date())

    fitted = model.fit.status is ModelStatus.FITTED and summary is not None
    predicted = Decimal(0)
    alive: float | None = None
    purchases_30 = purchases_90 = None
    next_order_at = None
    if fitted and summary is not None and model.fit.bgnbd and model.fit.gamma_gamma:
        x, t_x, T = (np.array([float(v)]) for v in (summary.frequency, summary.recency, summary.T))
        m = np.array([float(summary.monetary_value)])
        p = predict(
            model.fit.bgnbd,
            model.fit.gamma_gamma,
            x,
            t_x,
            T,
            m,
            months=model.horizon_months,
            monthly_discount_rate=model.monthly_discount_rate,
        )
        predicted = Decimal(repr(float(p.lifetime_value[0]))).quantize(CENT)
        alive = float(p.probability_alive[0])
        purchases_30 = float(p.purchases_30_days[0])
        purchases_90 = float(p.purchases_90_days[0])
        if alive >= rules.alive_threshold:
            bg = model.fit.bgnbd
            wait_days = (bg.alpha + summary.T) / (bg.r + summary.frequency)
            # From the start of today, as T counts whole days: stable within a day.
            today = datetime.combine(now.date(), time(), tzinfo=UTC)
            next_order_at = today + timedelta(days=wait_days)

    facts = CustomerFacts(
        orders=[Order(o.at, o.revenue, o.categories) for o in mine],
        clv_historical=clv_historical,
        clv_predicted=predicted,
        probability_alive=alive,
        average_rating=profile.support.average_rating,
        emails_clicked=profile.email_engagement.clicked_count,
        points_redeemed=profile.loyalty.points_redeemed,
        referred_buyers=sum(1 for v in profile.referrals.revenue_by_currency.values() if v > 0),
        traits=dict(profile.traits),
    )
    tier = value_tier(facts, model.top_value_bound, rules)
    step = ladder_step(facts, tier, rules)
    stage = lifecycle_stage(facts, now, rules)
    rfm = None
    segment: RfmSegment | None = None
    if mine and model.rfm_bounds is not None:
        days = (now - mine[-1].at).total_seconds() / 86400
        spent = profile.commerce.revenue_by_currency.get(currency or "", Decimal(0))
        cell = rfm_score(model.rfm_bounds, days, len(mine), float(spent))
        segment = cell.segment
        rfm = Rfm(
            recency=cell.recency, frequency=cell.frequency, monetary=cell.monetary, segment=segment
        )
    # Without a model, silence is the only evidence: a lapsed customer is a lost one.
    lapsed = 1.0 if stage == "lapsed" else 0.0
    churn = 1.0 - alive if alive is not None else lapsed
    scores = CustomerScores(
        customer_id=profile.customer_id,
        computed_at=now,
        currency=currency,
        clv_historical=clv_historical,
        clv_predicted=predicted,
        rfm=rfm,
        value_tier=tier,
        ladder_step=step,
        lifecycle_stage=stage,
        churn_risk=min(1.0, max(0.0, churn)),
        model=model.fit.status.value,
        model_version=model.version,
        clv_historical_by_currency=historical,
        expected_purchases_30_days=purchases_30,
        expected_purchases_90_days=purchases_90,
        probability_alive=alive,
        expected_next_order_at=next_order_at,
        recommendations=recommend(
            frozenset().union(*(o.products for o in orders)),
            model.co_purchases,
            count=model.recommendations,
        ),
    )
    standing = Standing(stage, tier, step, segment)
    return scores, standing


def unfitted_model() -> ScoringModel:
    """The model before the first refit: historical values only, no RFM, no top tier."""
    return ScoringModel(
        version=0,
        fit=Fit(ModelStatus.INSUFFICIENT_DATA, reason="no refit has run yet"),
        rfm_bounds=None,
        top_value_bound=Decimal("Infinity"),
    )

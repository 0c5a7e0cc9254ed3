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
- Expansion: recommendations (complementary products, `recommend`) and upgrades (higher-priced
  products in the categories the customer buys, `upgrades`), from the refit's co-purchases and
  catalogue.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from schemas.topics.scores_v1 import CustomerScores, Rfm
from services.scoring.domain.clv import Fit, ModelStatus, RepeatCalibration, predict
from services.scoring.domain.ledger import LedgerOrder as LedgerOrder  # re-exported
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.recommend import CoPurchases, recommend
from services.scoring.domain.rfm import RfmBounds, RfmSegment
from services.scoring.domain.rfm import score as rfm_score
from services.scoring.domain.standing import (
    CustomerFacts,
    Order,
    StandingRules,
    churn_band,
    ladder_step,
    lifecycle_stage,
    value_tier,
)
from services.scoring.domain.summary import CustomerSummary, Purchase, summarize
from services.scoring.domain.transitions import Standing
from services.scoring.domain.upgrades import Catalogue, UpgradeRules, upgrades

CENT = Decimal("0.01")
# An expected next order further away than this says no order is expected: null, not a date.
# (BG/NBD keeps a one-time buyer of long ago alive with a wait of a century or more, past every
# date scores.v1 can carry.)
NEXT_ORDER_WITHIN = timedelta(days=10 * 365)


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
    catalogue: Catalogue = field(default_factory=Catalogue)
    upgrade_rules: UpgradeRules = field(default_factory=UpgradeRules)
    # Repeat purchases per customer fitted on, actual against expected (the dashboard's chart).
    calibration: RepeatCalibration | None = None


def _add(into: dict[str, Decimal], amounts: Mapping[str, Decimal]) -> None:
    for currency, amount in amounts.items():
        into[currency] = into.get(currency, Decimal(0)) + amount


def main_currency(profile: ScoredProfile, orders: Sequence[LedgerOrder]) -> str | None:
    if profile.commerce.currency:
        return profile.commerce.currency
    counted = Counter(o.currency for o in orders if o.currency)
    return max(sorted(counted), key=counted.__getitem__) if counted else None


@dataclass(frozen=True, slots=True)
class _Prediction:
    clv: Decimal
    alive: float
    purchases_30: float
    purchases_90: float
    next_order_at: datetime | None


def _predictions(
    summaries: Sequence[CustomerSummary | None],
    model: ScoringModel,
    rules: StandingRules,
    now: datetime,
) -> list[_Prediction | None]:
    """The model's predictions for every customer with a summary, in one vectorised pass."""
    bg, gg = model.fit.bgnbd, model.fit.gamma_gamma
    found: list[_Prediction | None] = [None] * len(summaries)
    rows = [i for i, s in enumerate(summaries) if s is not None]
    if model.fit.status is not ModelStatus.FITTED or bg is None or gg is None or not rows:
        return found
    picked = [summaries[i] for i in rows]
    columns = [
        np.array([float(getattr(s, name)) for s in picked])
        for name in ("frequency", "recency", "T", "monetary_value")
    ]
    p = predict(
        bg,
        gg,
        *columns,
        months=model.horizon_months,
        monthly_discount_rate=model.monthly_discount_rate,
    )
    # From the start of today, as T counts whole days: the expected next order is stable
    # within a day.
    today = datetime.combine(now.date(), time(), tzinfo=UTC)
    for n, i in enumerate(rows):
        summary = picked[n]
        assert summary is not None
        alive = float(p.probability_alive[n])
        wait_days = (bg.alpha + summary.T) / (bg.r + summary.frequency)
        expected = alive >= rules.alive_threshold and wait_days <= NEXT_ORDER_WITHIN.days
        found[i] = _Prediction(
            clv=Decimal(repr(float(p.lifetime_value[n]))).quantize(CENT),
            alive=alive,
            purchases_30=float(p.purchases_30_days[n]),
            purchases_90=float(p.purchases_90_days[n]),
            next_order_at=today + timedelta(days=wait_days) if expected else None,
        )
    return found


def score_customer(
    profile: ScoredProfile,
    orders: Sequence[LedgerOrder],
    model: ScoringModel,
    rules: StandingRules,
    now: datetime,
) -> tuple[CustomerScores, Standing]:
    """The customer's scores.v1 record and standing; `orders` oldest first."""
    return score_customers([(profile, orders)], model, rules, now)[0]


def score_customers(
    customers: Sequence[tuple[ScoredProfile, Sequence[LedgerOrder]]],
    model: ScoringModel,
    rules: StandingRules,
    now: datetime,
) -> list[tuple[CustomerScores, Standing]]:
    """Every customer's scores.v1 record and standing, the model's predictions computed for
    all of them at once."""
    currencies = [main_currency(profile, orders) for profile, orders in customers]
    mine = [
        [o for o in orders if o.currency == currency or o.currency is None]
        for (_, orders), currency in zip(customers, currencies, strict=True)
    ]
    summaries = [summarize((Purchase(o.at, o.revenue) for o in own), now.date()) for own in mine]
    predictions = _predictions(summaries, model, rules, now)
    return [
        _assemble(profile, orders, own, currency, prediction, model, rules, now)
        for (profile, orders), own, currency, prediction in zip(
            customers, mine, currencies, predictions, strict=True
        )
    ]


def _assemble(
    profile: ScoredProfile,
    orders: Sequence[LedgerOrder],
    mine: list[LedgerOrder],
    currency: str | None,
    prediction: _Prediction | None,
    model: ScoringModel,
    rules: StandingRules,
    now: datetime,
) -> tuple[CustomerScores, Standing]:
    historical: dict[str, Decimal] = {}
    _add(historical, profile.commerce.revenue_by_currency)
    _add(historical, profile.referrals.revenue_by_currency)
    clv_historical = historical.get(currency, Decimal(0)) if currency else Decimal(0)
    alive = None if prediction is None else prediction.alive
    facts = CustomerFacts(
        orders=[Order(o.at, o.revenue, o.categories) for o in mine],
        clv_historical=clv_historical,
        clv_predicted=Decimal(0) if prediction is None else prediction.clv,
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
        clv_predicted=Decimal(0) if prediction is None else prediction.clv,
        rfm=rfm,
        value_tier=tier,
        ladder_step=step,
        lifecycle_stage=stage,
        churn_risk=min(1.0, max(0.0, churn)),
        model=model.fit.status.value,
        model_version=model.version,
        clv_historical_by_currency=historical,
        expected_purchases_30_days=None if prediction is None else prediction.purchases_30,
        expected_purchases_90_days=None if prediction is None else prediction.purchases_90,
        probability_alive=alive,
        expected_next_order_at=None if prediction is None else prediction.next_order_at,
        recommendations=recommend(
            frozenset().union(*(o.products for o in orders)),
            model.co_purchases,
            count=model.recommendations,
        ),
        upgrades=upgrades(orders, model.catalogue, model.co_purchases, model.upgrade_rules),
    )
    standing = Standing(stage, tier, step, segment, churn_band(scores.churn_risk, rules))
    return scores, standing


def unfitted_model() -> ScoringModel:
    """The model before the first refit: historical values only, no RFM, no top tier."""
    return ScoringModel(
        version=0,
        fit=Fit(ModelStatus.INSUFFICIENT_DATA, reason="no refit has run yet"),
        rfm_bounds=None,
        top_value_bound=Decimal("Infinity"),
    )

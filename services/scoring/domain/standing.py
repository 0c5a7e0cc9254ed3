"""Where a customer stands: value tier, loyalty ladder step and lifecycle stage.

Rules (thresholds in `StandingRules`, all configurable):

Value tier, on expected total value = historical CLV + predicted CLV:
- most_valuable: expected total value at or above the refit's top-share bound (by default the
  top 20% of customers with orders), and above zero;
- potential: not most valuable, and predicted CLV at least `potential_ratio` times what they
  have spent so far (by default as much again): worth investing in;
- low_value: everyone else, prospects included.

Loyalty ladder (the highest step that holds):
- prospect: known, no order; customer: ordered;
- client: a repeat buyer (two orders or more) still alive (P(alive) >= `alive_threshold`);
- supporter: a client who engages: reviews averaging 4 stars or more, email link clicks, or
  loyalty points redeemed;
- advocate: a customer who referred someone who then ordered;
- partner: an advocate in the most valuable tier, or a customer marked as an affiliate (a
  truthy `affiliate_trait` trait).

Lifecycle stage (the first that holds):
- selection: known, never ordered;
- lapsed: P(alive) below `lapsed_threshold`, or silent for more than `silent_intervals` of
  their usual interval between orders (one-time buyers: `one_time_silence_days`);
- acquisition: first order within `acquisition_days`, or only one order;
- expansion: a repeat buyer whose latest order shows growth (a shorter interval than their
  usual, a larger value than their average, or a category they had not bought);
- retention: a repeat buyer, alive, steady.

Churn-risk band, on churn risk (1 - P(alive); without a model 1 when lapsed, else 0): high
from `churn_high`, medium from `churn_medium`, else low.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Literal

from schemas.topics.scores_v1 import LadderStep, LifecycleStage, ValueTier

ChurnBand = Literal["low", "medium", "high"]
CHURN_BANDS: tuple[ChurnBand, ...] = ("low", "medium", "high")
TIER_RANK: dict[ValueTier, int] = {"low_value": 0, "potential": 1, "most_valuable": 2}
LADDER: tuple[LadderStep, ...] = (
    "prospect",
    "customer",
    "client",
    "supporter",
    "advocate",
    "partner",
)


@dataclass(frozen=True)
class StandingRules:
    top_share: float = 0.2  # most_valuable: this share of customers with orders, by value
    potential_ratio: Decimal = Decimal(1)
    alive_threshold: float = 0.5
    good_rating: float = 4.0
    affiliate_trait: str = "affiliate"
    lapsed_threshold: float = 0.3
    silent_intervals: float = 3.0
    one_time_silence_days: int = 180
    acquisition_days: int = 90
    churn_medium: float = 0.5  # churn risk from which a customer is in the medium band
    churn_high: float = 0.7  # ... and in the high band (win-back journeys start there)


@dataclass(frozen=True, slots=True)
class Order:
    """An order of the ledger, as the lifecycle rules read it."""

    at: datetime
    value: Decimal
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules need of one customer (from the profile, the ledger and the models)."""

    orders: Sequence[Order] = ()  # oldest first
    clv_historical: Decimal = Decimal(0)
    clv_predicted: Decimal = Decimal(0)
    probability_alive: float | None = None  # None without a fitted model
    average_rating: float | None = None
    emails_clicked: int = 0
    points_redeemed: int = 0
    referred_buyers: int = 0  # referred customers who have ordered
    traits: dict[str, object] = field(default_factory=dict)

    @property
    def expected_total(self) -> Decimal:
        return self.clv_historical + self.clv_predicted


def top_value_bound(expected_totals: Sequence[Decimal], top_share: float) -> Decimal:
    """The smallest expected total value among the top `top_share` of customers with orders."""
    if not expected_totals:
        return Decimal("Infinity")
    ordered = sorted(expected_totals, reverse=True)
    count = max(1, int(len(ordered) * top_share))
    return ordered[count - 1]


def value_tier(facts: CustomerFacts, top_bound: Decimal, rules: StandingRules) -> ValueTier:
    if not facts.orders:
        return "low_value"
    if facts.expected_total > 0 and facts.expected_total >= top_bound:
        return "most_valuable"
    if facts.clv_predicted > 0 and facts.clv_predicted >= rules.potential_ratio * max(
        facts.clv_historical, Decimal(0)
    ):
        return "potential"
    return "low_value"


def _alive(facts: CustomerFacts, threshold: float) -> bool:
    # Without a fitted model, a repeat buyer counts as alive until the lifecycle says lapsed.
    return facts.probability_alive is None or facts.probability_alive >= threshold


def ladder_step(facts: CustomerFacts, tier: ValueTier, rules: StandingRules) -> LadderStep:
    if not facts.orders:
        return "prospect"
    affiliate = bool(facts.traits.get(rules.affiliate_trait))
    advocate = facts.referred_buyers > 0
    if affiliate or (advocate and tier == "most_valuable"):
        return "partner"
    if advocate:
        return "advocate"
    client = len(facts.orders) >= 2 and _alive(facts, rules.alive_threshold)
    engaged = (
        (facts.average_rating is not None and facts.average_rating >= rules.good_rating)
        or facts.emails_clicked > 0
        or facts.points_redeemed > 0
    )
    if client and engaged:
        return "supporter"
    return "client" if client else "customer"


def lifecycle_stage(facts: CustomerFacts, now: datetime, rules: StandingRules) -> LifecycleStage:
    orders = facts.orders
    if not orders:
        return "selection"
    silent_days = (now - orders[-1].at).total_seconds() / 86400
    if len(orders) >= 2:
        span_days = (orders[-1].at - orders[0].at).total_seconds() / 86400
        usual = span_days / (len(orders) - 1)
        too_silent = silent_days > rules.silent_intervals * max(usual, 1.0)
    else:
        too_silent = silent_days > rules.one_time_silence_days
    dying = facts.probability_alive is not None and facts.probability_alive < rules.lapsed_threshold
    if too_silent or dying:
        return "lapsed"
    first_days = (now - orders[0].at).total_seconds() / 86400
    if len(orders) == 1 or first_days <= rules.acquisition_days:
        return "acquisition"
    return "expansion" if growing(orders) else "retention"


def churn_band(churn_risk: float, rules: StandingRules) -> ChurnBand:
    if churn_risk >= rules.churn_high:
        return "high"
    return "medium" if churn_risk >= rules.churn_medium else "low"


def growing(orders: Sequence[Order]) -> bool:
    """The latest order shows growth against the ones before it (needs three orders to have a
    usual interval, two for value and categories)."""
    if len(orders) < 2:
        return False
    *before, latest = orders
    earlier_value = sum((o.value for o in before), Decimal(0)) / len(before)
    bought = frozenset().union(*(o.categories for o in before))
    if latest.value > earlier_value or (latest.categories - bought):
        return True
    if len(orders) < 3:
        return False
    intervals = [(b.at - a.at).total_seconds() for a, b in pairwise(orders)]
    *usual, last = intervals
    return last < sum(usual) / len(usual)

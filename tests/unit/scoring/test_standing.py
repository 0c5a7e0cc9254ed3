"""Value tiers, the loyalty ladder and lifecycle stages: the documented rules, and monotone in
what they rank."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.standing import (
    LADDER,
    TIER_RANK,
    CustomerFacts,
    Order,
    StandingRules,
    churn_band,
    growing,
    ladder_step,
    lifecycle_stage,
    top_value_bound,
    value_tier,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RULES = StandingRules()


def orders(*days_ago: float, value: int = 50, categories: str = "shoes") -> tuple[Order, ...]:
    return tuple(
        Order(NOW - timedelta(days=d), Decimal(value), frozenset({categories}))
        for d in sorted(days_ago, reverse=True)
    )


money = st.integers(0, 10_000).map(Decimal)
facts = st.builds(
    CustomerFacts,
    orders=st.sampled_from([(), orders(10), orders(200, 100, 10)]),
    clv_historical=money,
    clv_predicted=money,
    probability_alive=st.one_of(st.none(), st.floats(0, 1)),
    average_rating=st.one_of(st.none(), st.floats(0, 5)),
    emails_clicked=st.integers(0, 3),
    points_redeemed=st.integers(0, 3),
    referred_buyers=st.integers(0, 2),
    traits=st.sampled_from([{}, {"affiliate": True}]),
)


def test_the_top_share_of_customers_by_expected_value_is_most_valuable() -> None:
    totals = [Decimal(v) for v in range(1, 11)]
    bound = top_value_bound(totals, 0.2)
    assert bound == Decimal(9)
    tiers = [
        value_tier(CustomerFacts(orders=orders(5), clv_historical=t), bound, RULES) for t in totals
    ]
    assert tiers.count("most_valuable") == 2
    assert value_tier(CustomerFacts(), Decimal(0), RULES) == "low_value"  # prospects


def test_potential_is_predicted_value_high_against_spend_so_far() -> None:
    bound = Decimal(1000)
    rising = CustomerFacts(orders=orders(5), clv_historical=Decimal(40), clv_predicted=Decimal(60))
    spent = CustomerFacts(orders=orders(5), clv_historical=Decimal(400), clv_predicted=Decimal(60))
    assert value_tier(rising, bound, RULES) == "potential"
    assert value_tier(spent, bound, RULES) == "low_value"


@given(facts, money)
def test_more_expected_value_never_makes_a_customer_less_valuable(
    customer: CustomerFacts, more: Decimal
) -> None:
    bound = Decimal(5_000)
    richer = replace(customer, clv_historical=customer.clv_historical + more)
    if value_tier(customer, bound, RULES) == "most_valuable":
        assert value_tier(richer, bound, RULES) == "most_valuable"


@given(facts)
def test_more_engagement_referrals_or_life_never_lower_the_ladder_step(
    customer: CustomerFacts,
) -> None:
    tier = value_tier(customer, Decimal(5_000), RULES)
    step = LADDER.index(ladder_step(customer, tier, RULES))
    better = [
        replace(customer, emails_clicked=customer.emails_clicked + 1),
        replace(customer, points_redeemed=customer.points_redeemed + 1),
        replace(customer, referred_buyers=customer.referred_buyers + 1),
        replace(customer, average_rating=5.0),
        replace(customer, probability_alive=1.0),
        replace(customer, traits={"affiliate": True}),
    ]
    for improved in better:
        assert LADDER.index(ladder_step(improved, tier, RULES)) >= step
    for higher in ("potential", "most_valuable"):
        if TIER_RANK[higher] >= TIER_RANK[tier]:
            assert LADDER.index(ladder_step(customer, higher, RULES)) >= step


def test_ladder_steps_follow_the_documented_rules() -> None:
    def step(**kwargs: object) -> str:
        customer = CustomerFacts(**kwargs)  # type: ignore[arg-type]
        return ladder_step(customer, value_tier(customer, Decimal(10**6), RULES), RULES)

    assert step() == "prospect"
    assert step(orders=orders(10)) == "customer"
    assert step(orders=orders(40, 10), probability_alive=0.9) == "client"
    assert step(orders=orders(40, 10), probability_alive=0.1) == "customer"  # not alive
    assert step(orders=orders(40, 10), probability_alive=0.9, emails_clicked=2) == "supporter"
    assert step(orders=orders(10), referred_buyers=1) == "advocate"
    assert step(orders=orders(10), traits={"affiliate": "yes"}) == "partner"


def test_lifecycle_stages_follow_the_documented_rules() -> None:
    def stage(history: tuple[Order, ...], alive: float | None = 0.9) -> str:
        return lifecycle_stage(CustomerFacts(orders=history, probability_alive=alive), NOW, RULES)

    assert stage(()) == "selection"
    assert stage(orders(20)) == "acquisition"
    assert stage(orders(200)) == "lapsed"  # one order, silent for more than 180 days
    assert stage(orders(300, 200, 100)) == "retention"
    assert stage(orders(300, 200, 100), alive=0.1) == "lapsed"
    assert stage(orders(360, 340, 320, 300)) == "lapsed"  # silent for 15 usual intervals
    steady = orders(300, 200, 100)
    bigger = (*steady[:-1], replace(steady[-1], value=Decimal(90)))
    assert stage(bigger) == "expansion"
    newer = (*steady[:-1], replace(steady[-1], categories=frozenset({"bags"})))
    assert stage(newer) == "expansion"


def test_growth_is_the_latest_order_against_the_earlier_ones() -> None:
    assert not growing(orders(10))
    assert growing(orders(300, 200, 150))  # the last interval shorter than the usual one
    assert not growing(orders(300, 200, 100))


@pytest.mark.parametrize(
    ("risk", "band"),
    [(0.0, "low"), (0.49, "low"), (0.5, "medium"), (0.69, "medium"), (0.7, "high")],
)
def test_churn_risk_bands_start_at_their_thresholds(risk: float, band: str) -> None:
    assert churn_band(risk, RULES) == band

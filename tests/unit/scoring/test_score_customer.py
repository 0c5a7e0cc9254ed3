"""Scoring one customer: historical and predicted CLV, fallbacks, standing, and the record."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.topics.profiles_v1 import Commerce, ProfileSnapshot, Referrals
from schemas.topics.scores_v1 import CustomerScores
from services.scoring.domain.clv import BgNbdParams, Fit, GammaGammaParams, ModelStatus
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.rfm import bounds_of
from services.scoring.domain.score import LedgerOrder, ScoringModel, score_customer
from services.scoring.domain.standing import StandingRules

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
FITTED = Fit(
    ModelStatus.FITTED,
    bgnbd=BgNbdParams(r=0.24, alpha=4.41, a=0.79, b=2.43),
    gamma_gamma=GammaGammaParams(p=6.25, q=3.74, v=15.44),
)
BOUNDS = bounds_of([5, 30, 90, 180, 365], [1, 1, 2, 3, 5], [20, 50, 100, 200, 500])


def model(fit: Fit = FITTED) -> ScoringModel:
    return ScoringModel(version=3, fit=fit, rfm_bounds=BOUNDS, top_value_bound=Decimal(1000))


def profile(
    revenue: dict[str, Decimal] | None = None,
    referred: dict[str, Decimal] | None = None,
    currency: str | None = "EUR",
) -> ScoredProfile:
    return ScoredProfile.of(
        ProfileSnapshot(
            customer_id="cus_1",
            revision=1,
            updated_at=NOW,
            commerce=Commerce(currency=currency, revenue_by_currency=revenue or {}),
            referrals=Referrals(revenue_by_currency=referred or {}),
        )
    )


def ordered(days_ago: float, revenue: str, currency: str = "EUR") -> LedgerOrder:
    at = NOW - timedelta(days=days_ago)
    return LedgerOrder(f"o-{days_ago}", at, Decimal(revenue), currency)


def score(*args: object, **kwargs: object) -> CustomerScores:
    return score_customer(*args, **kwargs)[0]  # type: ignore[arg-type]


def test_a_prospect_is_scored_without_orders() -> None:
    scores = score(profile(currency=None), [], model(), StandingRules(), NOW)
    assert (scores.lifecycle_stage, scores.ladder_step, scores.value_tier) == (
        "selection",
        "prospect",
        "low_value",
    )
    assert scores.rfm is None
    assert scores.clv_historical == 0
    assert scores.clv_predicted == 0


def test_historical_clv_adds_referred_revenue_per_currency_never_across() -> None:
    scores = score(
        profile(
            revenue={"EUR": Decimal("120.50"), "USD": Decimal(30)},
            referred={"EUR": Decimal("10.25"), "GBP": Decimal(7)},
        ),
        [ordered(40, "100.50"), ordered(10, "20"), ordered(5, "30", "USD")],
        model(),
        StandingRules(),
        NOW,
    )
    assert scores.currency == "EUR"
    assert scores.clv_historical == Decimal("130.75")
    assert scores.clv_historical_by_currency == {
        "EUR": Decimal("130.75"),
        "USD": Decimal(30),
        "GBP": Decimal(7),
    }


def test_a_fitted_model_predicts_and_the_record_says_so() -> None:
    orders = [ordered(200, "50"), ordered(120, "60"), ordered(20, "70")]
    scores = score(profile({"EUR": Decimal(180)}), orders, model(), StandingRules(), NOW)
    assert scores.model == "fitted"
    assert scores.model_version == 3
    assert scores.clv_predicted > 0
    assert scores.probability_alive is not None
    assert scores.churn_risk == pytest.approx(1 - scores.probability_alive)
    assert scores.expected_purchases_90_days >= scores.expected_purchases_30_days  # type: ignore[operator]
    assert scores.expected_next_order_at is not None
    assert scores.expected_next_order_at > NOW
    assert scores.rfm is not None
    assert scores.rfm.frequency == 4  # three orders: above the bounds 1, 1, 2
    # The record is a valid scores.v1 value.
    assert CustomerScores.model_validate_json(scores.model_dump_json()) == scores


def test_a_next_order_expected_beyond_ten_years_is_none_and_the_record_stays_valid() -> None:
    # A one-time buyer of 29 years ago: BG/NBD keeps them alive (P(alive) is 1 without a
    # repeat), and their expected wait, (alpha + T) / r, is over a century: past 2100, where
    # scores.v1's dates end. Found replaying CDNOW (1997-1998) after a fit on today's buyers.
    scores = score(
        profile({"EUR": Decimal(30)}), [ordered(29 * 365, "30")], model(), StandingRules(), NOW
    )
    assert scores.probability_alive == pytest.approx(1.0)
    assert scores.expected_next_order_at is None
    assert CustomerScores.model_validate_json(scores.model_dump_json()) == scores
    # Some years away, within ten, is still a date.
    soon = score(profile({"EUR": Decimal(30)}), [ordered(400, "30")], model(), StandingRules(), NOW)
    assert soon.expected_next_order_at is not None
    assert soon.expected_next_order_at < NOW + timedelta(days=10 * 365)


@pytest.mark.parametrize("status", [ModelStatus.INSUFFICIENT_DATA, ModelStatus.FAILED])
def test_without_a_fitted_model_scores_fall_back_to_historical_values(
    status: ModelStatus,
) -> None:
    orders = [ordered(400, "50")]  # one order, silent for over a year: lapsed
    scores = score(
        profile({"EUR": Decimal(50)}), orders, model(Fit(status, reason="x")), StandingRules(), NOW
    )
    assert scores.model == status.value
    assert scores.clv_predicted == 0
    assert scores.clv_historical == Decimal(50)
    assert scores.probability_alive is None
    assert scores.expected_purchases_30_days is None
    assert scores.lifecycle_stage == "lapsed"
    assert scores.churn_risk == 1.0


def test_recommendations_come_from_the_models_co_purchases() -> None:
    from dataclasses import replace

    from services.scoring.domain.recommend import co_purchases

    basket_model = replace(
        model(),
        co_purchases=co_purchases(
            [frozenset({"tent", "stove"}), frozenset({"tent", "stove", "mat"})]
        ),
    )
    tent = replace(ordered(3, "200"), products=frozenset({"tent"}))
    scores = score(profile({"EUR": Decimal(200)}), [tent], basket_model, StandingRules(), NOW)
    assert scores.recommendations[:2] == ["stove", "mat"]
    prospect = score(profile(currency=None), [], basket_model, StandingRules(), NOW)
    assert prospect.recommendations[0] in {"stove", "tent"}  # the most popular, for a first email


def test_upgrades_come_from_the_models_catalogue() -> None:
    from dataclasses import replace

    from services.scoring.domain.upgrades import Catalogue, Listing
    from tests.unit.scoring.ledger_orders import priced_order

    shop = Catalogue(
        {
            "tent-trek": Listing("tents", {"EUR": Decimal(160)}, buyers=3),
            "tent-lite": Listing("tents", {"EUR": Decimal(110)}, buyers=9),
        }
    )
    basic = priced_order(("tent-basic", "tents", "100"), at=NOW - timedelta(days=3))
    scores = score(
        profile({"EUR": Decimal(100)}),
        [basic],
        replace(model(), catalogue=shop),
        StandingRules(),
        NOW,
    )
    assert scores.upgrades == ["tent-trek"]  # tent-lite is not clearly dearer than 100
    assert CustomerScores.model_validate_json(scores.model_dump_json()) == scores

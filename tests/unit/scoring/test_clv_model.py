"""The CLV models' own promises: the fit recovers known parameters, its gradients are the
likelihood's, and it never raises: thin or broken data give a status and a reason."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from bench.scoring.synthetic import simulate
from services.scoring.domain.clv import (
    BgNbdParams,
    GammaGammaParams,
    ModelStatus,
    _bgnbd_value_and_gradient,
    _gamma_gamma_value_and_gradient,
    expected_purchases,
    fit,
    probability_alive,
)
from services.scoring.domain.summary import Purchase, summarize

TRUE_BGNBD = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
TRUE_GAMMA_GAMMA = GammaGammaParams(p=6.0, q=4.0, v=15.0)


def test_the_fit_recovers_the_parameters_that_generated_the_data() -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 200_000, seed=11)
    result = fit(people.frequency, people.recency, people.T, people.monetary_value)
    assert result.status is ModelStatus.FITTED, result.reason
    assert result.bgnbd is not None
    assert result.gamma_gamma is not None
    got = result.bgnbd
    np.testing.assert_allclose([got.r, got.alpha, got.a, got.b], [0.25, 4.0, 0.8, 2.5], rtol=0.1)
    gg = result.gamma_gamma
    np.testing.assert_allclose([gg.p, gg.q, gg.v], [6.0, 4.0, 15.0], rtol=0.15)


def central_difference(value: Callable[[np.ndarray], float], at: np.ndarray) -> np.ndarray:
    step = 1e-6
    return np.array(
        [
            (value(at + step * unit) - value(at - step * unit)) / (2 * step)
            for unit in np.eye(len(at))
        ]
    )


@pytest.mark.parametrize(
    "log_params", [np.log([0.25, 4.0, 0.8, 2.5]), np.log([1.3, 0.2, 3.0, 0.7])]
)
def test_the_bgnbd_gradient_is_the_likelihoods(log_params: np.ndarray) -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 2_000, seed=3)
    columns = (people.frequency, people.recency, people.T)

    def value(theta: np.ndarray) -> float:
        return float(_bgnbd_value_and_gradient(theta, *columns, None)[0].sum())

    analytic = _bgnbd_value_and_gradient(log_params, *columns, None)[1]
    np.testing.assert_allclose(
        analytic, central_difference(value, log_params), rtol=1e-5, atol=1e-3
    )


@pytest.mark.parametrize("log_params", [np.log([6.0, 4.0, 15.0]), np.log([1.5, 9.0, 60.0])])
def test_the_gamma_gamma_gradient_is_the_likelihoods(log_params: np.ndarray) -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 5_000, seed=5)
    repeat = people.frequency > 0
    columns = (people.frequency[repeat], people.monetary_value[repeat])

    def value(theta: np.ndarray) -> float:
        return float(_gamma_gamma_value_and_gradient(theta, *columns, None)[0].sum())

    analytic = _gamma_gamma_value_and_gradient(log_params, *columns, None)[1]
    np.testing.assert_allclose(
        analytic, central_difference(value, log_params), rtol=1e-5, atol=1e-3
    )


def test_thin_data_is_reported_not_fitted() -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 60, seed=1)
    result = fit(people.frequency, people.recency, people.T, people.monetary_value)
    assert result.status is ModelStatus.INSUFFICIENT_DATA
    assert result.reason is not None
    assert "60 customers with orders" in result.reason
    assert result.bgnbd is None


def test_a_small_shop_whose_customers_behave_alike_still_gets_a_model() -> None:
    # Nearly one drop-out probability and one spend level for everyone: the likelihood is a flat
    # ridge where a and b (q and v) grow together, often to the edge of their range; the limit
    # is the model (a point mass), so every shop like this gets one.
    alike_bgnbd = BgNbdParams(r=0.4, alpha=15.0, a=800.0, b=2500.0)
    alike_spend = GammaGammaParams(p=6.0, q=400.0, v=1500.0)
    for seed in range(30):
        people = simulate(alike_bgnbd, alike_spend, 150, seed=seed)
        result = fit(people.frequency, people.recency, people.T, people.monetary_value)
        assert result.status is ModelStatus.FITTED, (seed, result.reason)
        assert result.bgnbd is not None
        alive = probability_alive(result.bgnbd, people.frequency, people.recency, people.T)
        assert np.all((alive >= 0) & (alive <= 1))
        year = expected_purchases(result.bgnbd, 365, people.frequency, people.recency, people.T)
        assert np.all(np.isfinite(year) & (year >= 0))


def test_the_spend_model_does_not_depend_on_the_currency_unit() -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 5_000, seed=3)
    in_euros = fit(people.frequency, people.recency, people.T, people.monetary_value)
    in_rupiah = fit(people.frequency, people.recency, people.T, people.monetary_value * 17_000)
    assert in_euros.gamma_gamma is not None
    assert in_rupiah.gamma_gamma is not None
    euros, rupiah = in_euros.gamma_gamma, in_rupiah.gamma_gamma
    np.testing.assert_allclose([rupiah.p, rupiah.q], [euros.p, euros.q], rtol=1e-6)
    np.testing.assert_allclose(rupiah.v, euros.v * 17_000, rtol=1e-6)
    # Stored as JSON: plain floats, no numpy scalars.
    stored = [in_rupiah.bgnbd_log_likelihood, in_rupiah.gamma_gamma_log_likelihood]
    stored += [rupiah.p, rupiah.q, rupiah.v]
    assert all(type(value) is float for value in stored)


def test_broken_data_make_a_failed_fit_with_a_reason_never_an_exception() -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 5_000, seed=2)
    recency = people.recency.copy()
    recency[:10] = np.nan  # what a bug upstream could hand over
    result = fit(people.frequency, recency, people.T, people.monetary_value)
    assert result.status is ModelStatus.FAILED
    assert result.reason


def test_customers_buying_at_one_rate_forever_give_a_failed_fit_not_overflowing_scores() -> None:
    # No one drops out and everyone buys at one rate: the likelihood keeps rising as r and
    # alpha grow together, to parameters whose predictions overflow.
    rng = np.random.default_rng(2026)
    frequency, recency, T = [], [], []
    for i in range(140):
        days = np.sort(rng.choice(np.arange(1, 360), size=1 + i % 4, replace=False))[::-1]
        summary = summarize(
            [
                Purchase(datetime(2026, 12, 2, tzinfo=UTC) - timedelta(days=int(d)), Decimal(20))
                for d in days
            ],
            date(2026, 12, 2),
        )
        assert summary is not None
        frequency.append(summary.frequency)
        recency.append(summary.recency)
        T.append(summary.T)
    x, t_x, age = (np.array(c, dtype=np.float64) for c in (frequency, recency, T))
    result = fit(x, t_x, age, np.full(140, 20.0))
    assert result.status is ModelStatus.FAILED
    assert "do not pin them" in (result.reason or "")


def test_predictions_behave_as_the_model_says() -> None:
    people = simulate(TRUE_BGNBD, TRUE_GAMMA_GAMMA, 1_000, seed=4)
    x, t_x, T = people.frequency, people.recency, people.T
    month, quarter = (expected_purchases(TRUE_BGNBD, t, x, t_x, T) for t in (30, 90))
    assert np.all(month >= 0)
    assert np.all(quarter >= month)  # more time, more purchases
    alive = probability_alive(TRUE_BGNBD, x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(alive[x == 0] == 1)  # never bought again: cannot have dropped out
    # Of two repeat buyers alike but for how long ago they last bought, the quieter one is
    # less likely alive.
    recent = probability_alive(TRUE_BGNBD, np.array([3.0]), np.array([300.0]), np.array([310.0]))
    silent = probability_alive(TRUE_BGNBD, np.array([3.0]), np.array([30.0]), np.array([310.0]))
    assert silent[0] < recent[0]


def test_purchases_after_the_observation_end_are_not_seen() -> None:
    from datetime import UTC, date, datetime
    from decimal import Decimal

    def day(d: int) -> datetime:
        return datetime(2025, 1, d, 9, tzinfo=UTC)

    purchases = [
        Purchase(day(1), Decimal("10")),
        Purchase(day(1), Decimal("5")),  # same day: one purchase day, amounts summed
        Purchase(day(4), Decimal("20")),
        Purchase(day(9), Decimal("40")),
        Purchase(day(20), Decimal("99")),  # after the end
    ]
    summary = summarize(purchases, date(2025, 1, 10))
    assert summary is not None
    assert (summary.frequency, summary.recency, summary.T) == (2, 8, 9)
    assert summary.monetary_value == Decimal(30)  # mean of the repeat days: (20 + 40) / 2
    assert summarize(purchases[-1:], date(2025, 1, 10)) is None

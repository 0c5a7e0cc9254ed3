"""The CLV models against the reference implementation, lifetimes 0.11.3, on the CDNOW data it
ships: the same customer summaries, the same fitted parameters, the same predictions."""

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

from services.scoring.domain.clv import (
    BgNbdParams,
    GammaGammaParams,
    ModelStatus,
    customer_lifetime_value,
    expected_average_value,
    expected_purchases,
    fit,
    predict,
    probability_alive,
)
from services.scoring.domain.summary import Purchase, Summaries, summarize

# The file lifetimes ships (its own loader needs setuptools' pkg_resources, so read it directly).
CDNOW_MASTER = files("lifetimes") / "datasets" / "CDNOW_master.txt"
OBSERVATION_END = date(1998, 6, 30)


@cache
def transactions() -> pd.DataFrame:
    frame = pd.read_csv(
        str(CDNOW_MASTER),
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str, "amount": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@cache
def reference_summary() -> pd.DataFrame:
    frame = transactions().assign(amount=lambda f: f["amount"].astype(float))
    return summary_data_from_transaction_data(
        frame,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end=OBSERVATION_END.isoformat(),
        freq="D",
    )


@cache
def our_summaries() -> Summaries:
    purchases: dict[str, list[Purchase]] = {}
    for customer_id, day, amount in transactions()[["customer_id", "date", "amount"]].itertuples(
        index=False
    ):
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        purchases.setdefault(customer_id, []).append(Purchase(at, Decimal(amount)))
    summaries = {c: summarize(p, OBSERVATION_END) for c, p in purchases.items()}
    return Summaries.of({c: s for c, s in summaries.items() if s is not None})


@cache
def reference_fit() -> tuple[BetaGeoFitter, GammaGammaFitter]:
    summary = reference_summary()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    return bgf, ggf


def test_our_summary_of_cdnow_master_equals_lifetimes_for_every_customer() -> None:
    ours, theirs = our_summaries(), reference_summary().sort_index()
    assert list(ours.customer_ids) == list(theirs.index)
    assert np.array_equal(ours.frequency, theirs["frequency"].to_numpy())
    assert np.array_equal(ours.recency, theirs["recency"].to_numpy())
    assert np.array_equal(ours.T, theirs["T"].to_numpy())
    # Ours sums exact decimals; lifetimes sums floats: equal but for the last bits.
    np.testing.assert_allclose(ours.monetary_value, theirs["monetary_value"].to_numpy(), rtol=1e-12)


def test_our_fit_matches_lifetimes_parameters_to_three_significant_digits() -> None:
    s = our_summaries()
    result = fit(s.frequency, s.recency, s.T, s.monetary_value)
    assert result.status is ModelStatus.FITTED, result.reason
    assert result.bgnbd is not None
    assert result.gamma_gamma is not None
    bgf, ggf = reference_fit()
    ours = [result.bgnbd.r, result.bgnbd.alpha, result.bgnbd.a, result.bgnbd.b]
    theirs = [bgf.params_[name] for name in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(ours, theirs, rtol=5e-4)
    ours = [result.gamma_gamma.p, result.gamma_gamma.q, result.gamma_gamma.v]
    theirs = [ggf.params_[name] for name in ("p", "q", "v")]
    np.testing.assert_allclose(ours, theirs, rtol=5e-4)
    assert result.customers == len(s.frequency)


@pytest.mark.parametrize("days", [30, 90, 365])
def test_expected_purchases_match_lifetimes_for_every_customer(days: int) -> None:
    s = our_summaries()
    bgf, _ = reference_fit()
    ours = expected_purchases(_bgnbd(bgf), days, s.frequency, s.recency, s.T)
    theirs = bgf.conditional_expected_number_of_purchases_up_to_time(
        days, s.frequency, s.recency, s.T
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_probability_alive_matches_lifetimes_for_every_customer() -> None:
    s = our_summaries()
    bgf, _ = reference_fit()
    ours = probability_alive(_bgnbd(bgf), s.frequency, s.recency, s.T)
    theirs = bgf.conditional_probability_alive(s.frequency, s.recency, s.T)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_expected_value_and_clv_match_lifetimes_for_every_customer() -> None:
    s = our_summaries()
    bgf, ggf = reference_fit()
    gg = GammaGammaParams(ggf.params_["p"], ggf.params_["q"], ggf.params_["v"])
    ours = expected_average_value(gg, s.frequency, s.monetary_value)
    theirs = ggf.conditional_expected_average_profit(
        pd.Series(s.frequency), pd.Series(s.monetary_value)
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)
    ours = customer_lifetime_value(
        _bgnbd(bgf), gg, s.frequency, s.recency, s.T, s.monetary_value, months=12
    )
    theirs = ggf.customer_lifetime_value(
        bgf,
        pd.Series(s.frequency),
        pd.Series(s.recency),
        pd.Series(s.T),
        pd.Series(s.monetary_value),
        time=12,
        discount_rate=0.01,
        freq="D",
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_predictions_from_our_own_fit_agree_with_lifetimes_own() -> None:
    s = our_summaries()
    result = fit(s.frequency, s.recency, s.T, s.monetary_value)
    assert result.bgnbd is not None
    bgf, _ = reference_fit()
    ours = expected_purchases(result.bgnbd, 90, s.frequency, s.recency, s.T)
    theirs = bgf.conditional_expected_number_of_purchases_up_to_time(
        90, s.frequency, s.recency, s.T
    )
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-3)


def _bgnbd(bgf: BetaGeoFitter) -> BgNbdParams:
    return BgNbdParams(*(float(bgf.params_[name]) for name in ("r", "alpha", "a", "b")))


def test_predict_gives_every_prediction_as_the_single_functions_do() -> None:
    s = our_summaries()
    bgf, ggf = reference_fit()
    bg = _bgnbd(bgf)
    gg = GammaGammaParams(ggf.params_["p"], ggf.params_["q"], ggf.params_["v"])
    predicted = predict(bg, gg, s.frequency, s.recency, s.T, s.monetary_value)
    x, t_x, t = s.frequency, s.recency, s.T
    np.testing.assert_array_equal(
        predicted.purchases_30_days, expected_purchases(bg, 30, x, t_x, t)
    )
    np.testing.assert_array_equal(
        predicted.purchases_90_days, expected_purchases(bg, 90, x, t_x, t)
    )
    np.testing.assert_array_equal(predicted.probability_alive, probability_alive(bg, x, t_x, t))
    np.testing.assert_array_equal(
        predicted.lifetime_value,
        customer_lifetime_value(bg, gg, x, t_x, t, s.monetary_value),
    )

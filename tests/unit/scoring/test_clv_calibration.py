"""The fit's calibration: P(X(t) = x) of BG/NBD equals lifetimes' (Fader, Hardie and Lee 2005,
eq. 8), the probabilities of every count add up to one, and the expected customers per count of
repeat purchases add up to the customers fitted on, like the actual counts."""

from dataclasses import replace

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter

from services.scoring.domain.clv import (
    CALIBRATION_REPEATS,
    BgNbdParams,
    purchase_count_probabilities,
    repeat_calibration,
)
from services.scoring.domain.score import unfitted_model
from services.scoring.store import model_from_json, model_to_json

# The parameters lifetimes fits on CDNOW (its documentation's example).
CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def _lifetimes(params: BgNbdParams) -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series({"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b})
    return fitter


@pytest.mark.parametrize("t", [0.0, 1.0, 7.0, 30.0, 365.0, 3650.0])
def test_the_probability_of_each_count_is_lifetimes(t: float) -> None:
    reference = _lifetimes(CDNOW)
    ours = purchase_count_probabilities(CDNOW, 10, np.array([t]))[0]
    theirs = [reference.probability_of_n_purchases_up_to_time(t, n) for n in range(10)]
    assert ours == pytest.approx(theirs, abs=1e-12)


positive = st.floats(0.05, 20.0)


@given(
    params=st.builds(BgNbdParams, positive, positive, positive, positive),
    t=st.floats(0.0, 2000.0),
)
def test_the_probabilities_are_a_distribution(params: BgNbdParams, t: float) -> None:
    found = purchase_count_probabilities(params, 400, np.array([t]))[0]
    assert np.all(found >= -1e-12)
    assert np.all(found <= 1 + 1e-12)
    assert float(found.sum()) <= 1 + 1e-9
    # What 400 counts leave out is the chance of more, negligible unless purchases come fast.
    if t / (params.alpha + t) <= 0.9 and params.r <= 5:
        assert float(found.sum()) == pytest.approx(1.0, abs=1e-6)


def test_the_calibration_counts_customers_per_repeat_purchases_and_the_last_is_or_more() -> None:
    frequency = np.array([0, 0, 1, 2, 5, 6, 9], dtype=np.float64)
    T = np.array([10, 30, 30, 300, 300, 400, 400], dtype=np.float64)
    calibration = repeat_calibration(CDNOW, frequency, T)
    assert calibration.actual == (2, 1, 1, 0, 0, 1, 2)
    assert calibration.expected is not None
    assert len(calibration.expected) == CALIBRATION_REPEATS
    assert sum(calibration.expected) == pytest.approx(len(frequency))
    # Each count's expected customers: the sum of every customer's own P(X(T) = x).
    reference = _lifetimes(CDNOW)
    for x in range(CALIBRATION_REPEATS - 1):
        direct = sum(reference.probability_of_n_purchases_up_to_time(t, x) for t in T)
        assert calibration.expected[x] == pytest.approx(direct, rel=1e-10)


def test_without_a_fitted_model_only_the_actual_counts_are_known() -> None:
    calibration = repeat_calibration(None, np.array([0.0, 3.0]), np.array([5.0, 50.0]))
    assert calibration.actual == (1, 0, 0, 1, 0, 0, 0)
    assert calibration.expected is None


def test_the_calibration_is_kept_with_the_model_and_older_models_have_none() -> None:
    calibration = repeat_calibration(CDNOW, np.array([0.0, 2.0, 9.0]), np.array([9.0, 40, 400]))
    model = replace(unfitted_model(), calibration=calibration)
    stored = orjson.loads(orjson.dumps(model_to_json(model)))
    assert model_from_json(stored).calibration == calibration
    del stored["calibration"]
    assert model_from_json(stored).calibration is None

"""Predicted customer lifetime value: the BG/NBD and Gamma-Gamma models, fitted by maximum
likelihood, vectorised with numpy and scipy.

- BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while alive, a
  customer buys at a Poisson rate drawn from Gamma(r, alpha); after each purchase they drop
  out with a probability drawn from Beta(a, b). It predicts the number of purchases in the
  next t days and the probability that the customer is still alive.
- Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV"): the value of a customer's
  purchases varies around their own mean, which varies across customers; it predicts the
  mean value of a customer's future purchases from their repeat purchases so far.
- CLV over a horizon: expected purchases month by month (30 days), times the expected value,
  discounted monthly.

Both fits minimise the mean negative log-likelihood over the parameters' logarithms (so they
stay positive) with L-BFGS-B, bounded, using the analytic gradients below; the
log-likelihoods are computed in log space (`gammaln`, `logaddexp`). Customers with the same
(frequency, recency, T) are fitted once, weighted by how many they are. A fit never raises:
it reports `insufficient_data` when too few customers bought twice, or `failed` with the
reason, and the caller falls back to historical value.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, xlogy

Array = npt.NDArray[np.float64]

DAYS_PER_MONTH = 30  # the models' month, as the CLV literature and lifetimes count it
# Parameters between e^-15 and e^15: far beyond any data (spend is fitted in units of its mean,
# so v does not depend on the currency), and still where gammaln(a + b) - gammaln(a) keeps its
# precision; near e^25 the likelihood is noise of 1e-4 and the line search stalls in it.
_LOG_BOUND = 15.0
# The line search can fail (ABNORMAL) on a flat ridge: a and b (or q and v) growing together
# when a small shop's customers drop out (or spend) alike, so the Beta (or Gamma) collapses to a
# point. The optimum is reached in all that matters when moving any log-parameter by one
# changes the mean log-likelihood by less than this; predictions no longer move along the ridge.
# The same holds when the ridge runs to the bounds: a Beta with a and b near e^15 is the point
# mass it tends to.
_FLAT_GRADIENT = 1e-3
_LINE_SEARCH_FAILED = 2  # L-BFGS-B's status for ABNORMAL


class ModelStatus(StrEnum):
    FITTED = "fitted"
    INSUFFICIENT_DATA = "insufficient_data"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


@dataclass(frozen=True)
class Fit:
    """A fit's outcome: the parameters when fitted, else why not."""

    status: ModelStatus
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    reason: str | None = None
    customers: int = 0
    repeat_customers: int = 0
    bgnbd_log_likelihood: float | None = None
    gamma_gamma_log_likelihood: float | None = None


@dataclass(frozen=True)
class FitSettings:
    min_customers: int = 100
    min_repeat_customers: int = 20  # Gamma-Gamma needs repeat buyers; so does a useful BG/NBD
    max_iterations: int = 500
    tolerance: float = 1e-10


def _grouped(*columns: Array) -> tuple[list[Array], Array]:
    """Distinct rows of the columns and how many times each occurs."""
    unique, _, counts = _distinct(*columns)
    return unique, counts


def _distinct(*columns: Array) -> tuple[list[Array], npt.NDArray[np.intp], Array]:
    """Distinct rows of the columns, where each row went, and how many times each occurs.

    Summaries count whole days, so a million customers have far fewer distinct histories:
    fitting and predicting on those and spreading the results back gives the same, faster.
    Whole non-negative numbers are packed into one integer key per row (sorting one column is
    much faster than sorting rows); anything else is taken row by row, ungrouped.
    """
    size = len(columns[0])
    whole = all(
        bool(np.all(np.isfinite(c))) and bool(np.all(c >= 0)) and bool(np.all(c == np.floor(c)))
        for c in columns
    )
    spans = [int(c.max()) + 1 if size else 1 for c in columns]
    if not whole or float(np.prod(np.array(spans, dtype=np.float64))) >= 2.0**62:
        return list(columns), np.arange(size), np.ones(size)
    key = np.zeros(size, dtype=np.int64)
    for column, span in zip(columns, spans, strict=True):
        key = key * span + column.astype(np.int64)
    unique, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    decoded: list[Array] = []
    for span in reversed(spans):
        decoded.append((unique % span).astype(np.float64))
        unique = unique // span
    return decoded[::-1], inverse.ravel(), counts.astype(np.float64)


def bgnbd_log_likelihood(params: BgNbdParams, frequency: Array, recency: Array, T: Array) -> Array:
    """Each customer's log-likelihood under BG/NBD."""
    value, _ = _bgnbd_value_and_gradient(
        np.log([params.r, params.alpha, params.a, params.b]), frequency, recency, T, None
    )
    return value


def _bgnbd_value_and_gradient(
    log_params: Array, x: Array, t_x: Array, T: Array, weights: Array | None
) -> tuple[Array, Array]:
    """Per-customer log-likelihoods, and the weighted sum's gradient in log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    # A purchase-free customer's b + x - 1 is unused (masked below) but must stay finite.
    b_x_1 = b + np.maximum(x, 1) - 1
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b_x_1) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(repeat, a4, -np.inf)
    mix = np.logaddexp(a3, a4)
    value = a1 + a2 + mix
    w3 = np.exp(a3 - mix)  # the share of "alive through T" in the mixture; the rest is a4's
    w4 = 1.0 - w3
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T)
    d_r -= np.where(repeat, w4 * np.log(alpha + t_x), 0.0)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T)
    d_alpha -= np.where(repeat, w4 * (r + x) / (alpha + t_x), 0.0)
    d_a = digamma(a + b) - digamma(a + b + x) + np.where(repeat, w4 / a, 0.0)
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
    d_b -= np.where(repeat, w4 / b_x_1, 0.0)
    w = np.ones_like(x) if weights is None else weights
    gradient = np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)])
    return value, gradient * np.array([r, alpha, a, b])


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: Array, monetary_value: Array
) -> Array:
    value, _ = _gamma_gamma_value_and_gradient(
        np.log([params.p, params.q, params.v]), frequency, monetary_value, None
    )
    return value


def _gamma_gamma_value_and_gradient(
    log_params: Array, x: Array, m: Array, weights: Array | None
) -> tuple[Array, Array]:
    p, q, v = np.exp(log_params)
    px = p * x
    xm_v = x * m + v
    value = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(xm_v)
    )
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(xm_v))
    d_q = digamma(px + q) - digamma(q) + np.log(v) - np.log(xm_v)
    d_v = q / v - (px + q) / xm_v
    w = np.ones_like(x) if weights is None else weights
    gradient = np.array([np.dot(w, d) for d in (d_p, d_q, d_v)])
    return value, gradient * np.array([p, q, v])


def _minimise(
    value_and_gradient: Any,
    start: Array,
    columns: list[Array],
    weights: Array,
    settings: FitSettings,
) -> tuple[Array, float]:
    """The log-parameters maximising the mean log-likelihood, and that maximum."""
    total = float(weights.sum())

    def objective(log_params: Array) -> tuple[float, Array]:
        values, gradient = value_and_gradient(log_params, *columns, weights)
        return -float(np.dot(weights, values)) / total, -gradient / total

    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
        options={"maxiter": settings.max_iterations, "ftol": settings.tolerance, "gtol": 1e-9},
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FloatingPointError(f"the likelihood is not finite at the optimum: {result.message}")
    flat = bool(np.max(np.abs(result.jac)) <= _FLAT_GRADIENT)
    if not (result.success or (flat and result.status == _LINE_SEARCH_FAILED)):
        raise ArithmeticError(f"the optimiser did not converge: {result.message}")
    # Out on a flat ridge the edge is as good as the limit; a likelihood still rising there is not.
    if np.any(np.abs(result.x) >= _LOG_BOUND - 1e-6) and not flat:
        raise ArithmeticError("a parameter ran to the edge of its range: the data do not pin it")
    return np.asarray(result.x, dtype=np.float64), -float(result.fun) * total


def _check_predictions(params: BgNbdParams, histories: list[Array]) -> None:
    """Parameters far out on a ridge (r and alpha growing together when every customer buys
    at one rate) can fit and still overflow the predictions: such a model is no model."""
    x, t_x, T = histories
    year = _expected_purchases(params, 365, x, t_x, T)
    alive = probability_alive(params, x, t_x, T)
    if not (np.all(np.isfinite(year)) and np.all(np.isfinite(alive))):
        raise ArithmeticError(
            f"the fitted parameters (r={params.r:.3g}, alpha={params.alpha:.3g}) predict "
            "non-finite values: the data do not pin them"
        )


def fit(
    frequency: Array,
    recency: Array,
    T: Array,
    monetary_value: Array,
    settings: FitSettings | None = None,
) -> Fit:
    """Fit BG/NBD on every customer and Gamma-Gamma on those with repeat purchases of value."""
    settings = settings or FitSettings()
    customers = len(frequency)
    repeat = (frequency > 0) & (monetary_value > 0)
    repeat_customers = int(repeat.sum())
    if customers < settings.min_customers or repeat_customers < settings.min_repeat_customers:
        return Fit(
            ModelStatus.INSUFFICIENT_DATA,
            reason=(
                f"{customers} customers with orders, {repeat_customers} of them repeat buyers; "
                f"at least {settings.min_customers} and {settings.min_repeat_customers} are needed"
            ),
            customers=customers,
            repeat_customers=repeat_customers,
        )
    try:
        with np.errstate(all="ignore"):  # failures show as non-finite results, checked below
            histories, weights = _grouped(frequency, recency, T)
            bg, bg_ll = _minimise(
                _bgnbd_value_and_gradient, np.zeros(4), histories, weights, settings
            )
            _check_predictions(BgNbdParams(*np.exp(bg)), histories)
            # Purchase values are amounts, rarely equal: no grouping to gain.
            # Fitted in units of the mean spend: p and q do not change, v scales, and the
            # log-likelihood moves by log(unit) per customer.
            unit = float(np.mean(monetary_value[repeat]))
            columns = [frequency[repeat], monetary_value[repeat] / unit]
            weights = np.ones(repeat_customers)
            gg, gg_ll = _minimise(
                _gamma_gamma_value_and_gradient, np.zeros(3), columns, weights, settings
            )
            gg[2] += np.log(unit)
            gg_ll -= repeat_customers * float(np.log(unit))
    except (ArithmeticError, FloatingPointError, ValueError) as error:
        return Fit(
            ModelStatus.FAILED,
            reason=str(error),
            customers=customers,
            repeat_customers=repeat_customers,
        )
    r, alpha, a, b = np.exp(bg)
    p, q, v = np.exp(gg)
    return Fit(
        ModelStatus.FITTED,
        bgnbd=BgNbdParams(float(r), float(alpha), float(a), float(b)),
        gamma_gamma=GammaGammaParams(float(p), float(q), float(v)),
        customers=customers,
        repeat_customers=repeat_customers,
        bgnbd_log_likelihood=bg_ll,
        gamma_gamma_log_likelihood=gg_ll,
    )


def expected_purchases(
    params: BgNbdParams, t: float, frequency: Array, recency: Array, T: Array
) -> Array:
    """Expected number of purchases in the next `t` days."""
    (x, t_x, distinct_T), inverse, _ = _distinct(frequency, recency, T)
    return _expected_purchases(params, t, x, t_x, distinct_T)[inverse]


def _expected_purchases(
    params: BgNbdParams, t: float, frequency: Array, recency: Array, T: Array
) -> Array:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = frequency
    with np.errstate(divide="ignore", invalid="ignore"):
        first = (a + b + x - 1) / (a - 1)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        second = 1 - hyp * ((alpha + T) / (alpha + t + T)) ** (r + x)
        dropout = np.where(
            x > 0,
            a / (b + np.maximum(x, 1) - 1) * ((alpha + T) / (alpha + recency)) ** (r + x),
            0.0,
        )
    return np.asarray(first * second / (1 + dropout), dtype=np.float64)


def probability_alive(params: BgNbdParams, frequency: Array, recency: Array, T: Array) -> Array:
    """P(the customer has not dropped out); 1 for a customer who never bought again."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = frequency
    log_odds_dead = (r + x) * np.log((alpha + T) / (alpha + recency)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.asarray(np.where(x == 0, 1.0, expit(-log_odds_dead)), dtype=np.float64)


def expected_average_value(
    params: GammaGammaParams, frequency: Array, monetary_value: Array
) -> Array:
    """The mean value of a customer's future purchases: their own mean shrunk towards the
    population's, the more so the fewer repeat purchases they made."""
    p, q, v = params.p, params.q, params.v
    weight = p * frequency / (p * frequency + q - 1)
    population_mean = v * p / (q - 1)
    return np.asarray((1 - weight) * population_mean + weight * monetary_value, dtype=np.float64)


def _discounted_purchases(
    bgnbd: BgNbdParams,
    x: Array,
    t_x: Array,
    T: Array,
    months: int,
    monthly_discount_rate: float,
) -> Array:
    """Each month's expected purchases over the horizon (30-day months), discounted, summed."""
    discounted = np.zeros_like(x)
    before = np.zeros_like(x)
    for month in range(1, months + 1):
        upto = _expected_purchases(bgnbd, month * DAYS_PER_MONTH, x, t_x, T)
        discounted += (upto - before) / (1 + monthly_discount_rate) ** month
        before = upto
    return discounted


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: Array,
    recency: Array,
    T: Array,
    monetary_value: Array,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> Array:
    """Discounted value of the purchases expected over the next `months`: the discounted
    expected purchases times the expected value of a purchase."""
    return predict(
        bgnbd,
        gamma_gamma,
        frequency,
        recency,
        T,
        monetary_value,
        months=months,
        monthly_discount_rate=monthly_discount_rate,
    ).lifetime_value


@dataclass(frozen=True)
class Predictions:
    """What the models say of each customer, in the order of the arrays given."""

    purchases_30_days: Array
    purchases_90_days: Array
    probability_alive: Array
    expected_purchase_value: Array
    lifetime_value: Array


def predict(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: Array,
    recency: Array,
    T: Array,
    monetary_value: Array,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> Predictions:
    """Every prediction at once, computed once per distinct purchase history."""
    (x, t_x, distinct_T), inverse, _ = _distinct(frequency, recency, T)
    value = expected_average_value(gamma_gamma, frequency, monetary_value)
    discounted = _discounted_purchases(bgnbd, x, t_x, distinct_T, months, monthly_discount_rate)
    return Predictions(
        purchases_30_days=_expected_purchases(bgnbd, 30, x, t_x, distinct_T)[inverse],
        purchases_90_days=_expected_purchases(bgnbd, 90, x, t_x, distinct_T)[inverse],
        probability_alive=probability_alive(bgnbd, x, t_x, distinct_T)[inverse],
        expected_purchase_value=value,
        lifetime_value=np.asarray(value * discounted[inverse], dtype=np.float64),
    )


def purchase_count_probabilities(params: BgNbdParams, most: int, t: Array) -> Array:
    """P(X(t) = x) for x = 0 .. most - 1, one row per length of time in `t` (days): the chance
    of exactly x repeat purchases in t days for a customer drawn at random (Fader, Hardie and
    Lee 2005, eq. 8), in log space so large counts and long times stay finite."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = np.arange(most, dtype=np.float64)[np.newaxis, :]
    t = np.asarray(t, dtype=np.float64)[:, np.newaxis]
    log_share = np.log(alpha) - np.log(alpha + t)  # log(alpha / (alpha + t))
    # The negative binomial terms Gamma(r + j) / (Gamma(r) j!) (t / (alpha + t))^j, j = x
    # (xlogy: 0^0 = 1 at t = 0).
    log_terms = gammaln(r + x) - gammaln(r) - gammaln(x + 1) + xlogy(x, t / (alpha + t))
    alive = np.exp(betaln(a, b + x) - betaln(a, b) + r * log_share + log_terms)
    # Dropped out after the x-th purchase: the chance of at least x purchases while alive.
    below = np.cumsum(np.exp(log_terms), axis=1) - np.exp(log_terms)  # sum over j < x
    at_least = 1 - np.exp(r * log_share) * below
    dropped = np.exp(betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)) * at_least
    return np.asarray(alive + np.where(x > 0, dropped, 0.0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RepeatCalibration:
    """How many customers made 0, 1, ... repeat purchases in their time as customers, and how
    many the fitted BG/NBD expects over each one's own T: the last count is "that many or more".
    `expected` is None without a fitted model."""

    actual: tuple[int, ...]
    expected: tuple[float, ...] | None


CALIBRATION_REPEATS = 7  # 0 .. 5 repeat purchases, then 6 or more


def repeat_calibration(
    params: BgNbdParams | None, frequency: Array, T: Array, counts: int = CALIBRATION_REPEATS
) -> RepeatCalibration:
    """The calibration of a fit: actual against expected customers per repeat purchases made."""
    capped = np.minimum(frequency, counts - 1).astype(np.int64)
    actual = tuple(int(n) for n in np.bincount(capped, minlength=counts))
    if params is None:
        return RepeatCalibration(actual, None)
    days, customers = np.unique(T, return_counts=True)  # whole days: few distinct T
    exact = purchase_count_probabilities(params, counts - 1, days)
    expected = customers @ exact
    rest = float(customers.sum()) - float(expected.sum())  # "or more": what is left
    return RepeatCalibration(actual, (*(float(e) for e in expected), rest))

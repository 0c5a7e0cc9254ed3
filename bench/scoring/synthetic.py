"""Customers drawn from the BG/NBD and Gamma-Gamma generative processes with known parameters,
so a fit can be checked against the truth (tests) and timed at scale (the benchmark).

BG/NBD: each customer buys at a Poisson rate lambda ~ Gamma(r, rate alpha) from their first
purchase (time 0) and, after each repeat purchase, drops out with probability p ~ Beta(a, b).
Gamma-Gamma: a customer's purchase values are Gamma(p, rate nu) with nu ~ Gamma(q, rate v), so
the mean of x of them is Gamma(p x, rate nu x). Purchases happen in continuous time; the
summaries count whole days (T and recency), as a shop's ledger gives them.
"""

from dataclasses import dataclass

import numpy as np

from services.scoring.domain.clv import Array, BgNbdParams, GammaGammaParams


@dataclass(frozen=True)
class Population:
    frequency: Array
    recency: Array
    T: Array
    monetary_value: Array


def simulate(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    size: int,
    *,
    seed: int = 7,
    max_days: float = 730.0,
) -> Population:
    """`size` customers whose first purchase was 1 to `max_days` whole days before the end."""
    rng = np.random.default_rng(seed)
    # Observed for T whole days after the day of the first purchase, which fell at a random
    # time of that day: the window runs from that moment to the end of the last day.
    T = rng.integers(1, int(max_days), size, endpoint=True).astype(np.float64)
    time_of_day = rng.random(size)
    window = T + 1 - time_of_day
    rate = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, size)
    dropout = rng.beta(bgnbd.a, bgnbd.b, size)
    frequency = np.zeros(size)
    last = np.zeros(size)  # time of the last repeat purchase, from the first
    active = np.arange(size)  # customers who may still buy: alive, within their window
    while active.size:
        at = last[active] + rng.exponential(1.0 / rate[active])
        bought = at < window[active]
        buyers = active[bought]
        frequency[buyers] += 1
        last[buyers] = at[bought]
        active = buyers[rng.random(buyers.size) > dropout[buyers]]
    # The ledger counts days: recency is the day of the last purchase (0 for none).
    recency = np.where(frequency > 0, np.floor(time_of_day + last), 0.0)
    nu = rng.gamma(gamma_gamma.q, 1.0 / gamma_gamma.v, size)
    repeat = frequency > 0
    monetary = np.zeros(size)
    x = frequency[repeat]
    monetary[repeat] = rng.gamma(gamma_gamma.p * x, 1.0 / (nu[repeat] * x))
    return Population(frequency, recency, T, monetary)

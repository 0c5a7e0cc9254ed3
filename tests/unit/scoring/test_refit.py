"""A refit from the ledger: the same fit as on the summaries, RFM bounds, the top-tier bound."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.scoring.domain.clv import ModelStatus, fit
from services.scoring.domain.refit import SAMPLE_BUCKETS, RefitSettings, refit, sample_buckets
from services.scoring.domain.score import LedgerOrder
from services.scoring.domain.standing import StandingRules
from services.scoring.domain.upgrades import UpgradeRules
from tests.unit.scoring.ledger_orders import priced_order
from tests.unit.scoring.test_clv_against_lifetimes import (
    OBSERVATION_END,
    our_summaries,
    transactions,
)


def cdnow_ledger() -> dict[str, list[LedgerOrder]]:
    ledger: dict[str, list[LedgerOrder]] = {}
    frame = transactions()[["customer_id", "date", "amount"]]
    for n, (customer_id, day, amount) in enumerate(frame.itertuples(index=False)):
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        ledger.setdefault(customer_id, []).append(LedgerOrder(f"o{n}", at, Decimal(amount), "USD"))
    return ledger


def test_a_refit_on_the_cdnow_ledger_fits_what_the_summaries_fit() -> None:
    model = refit(cdnow_ledger(), as_of=OBSERVATION_END, version=7, rules=StandingRules())
    s = our_summaries()
    direct = fit(s.frequency, s.recency, s.T, s.monetary_value)
    assert model.version == 7
    assert model.fit.status is ModelStatus.FITTED
    assert model.fit.bgnbd == direct.bgnbd
    assert model.fit.gamma_gamma == direct.gamma_gamma
    assert model.rfm_bounds is not None
    assert list(model.rfm_bounds.frequency) == sorted(model.rfm_bounds.frequency)
    assert model.top_value_bound > 0


def test_orders_after_the_observation_end_are_not_seen() -> None:
    # The CDNOW cohort made its first purchases from January to March 1997.
    early = refit(cdnow_ledger(), as_of=date(1997, 2, 1), version=1, rules=StandingRules())
    assert early.fit.customers < our_summaries().T.size


def test_a_thin_ledger_gives_a_model_that_says_so() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    ledger = {
        f"c{i}": [LedgerOrder("o1", now - timedelta(days=i + 1), Decimal(10), "EUR")]
        for i in range(5)
    }
    model = refit(ledger, as_of=now.date(), version=2, rules=StandingRules())
    assert model.fit.status is ModelStatus.INSUFFICIENT_DATA
    assert model.rfm_bounds is not None
    assert model.top_value_bound == pytest.approx(Decimal(10))


def test_a_refit_prices_the_catalogue_for_upgrades_with_the_rules_it_is_given() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)

    ledger = {
        "c1": [priced_order(("tent-basic", "tents", "100"), at=now)],
        "c2": [priced_order(("tent-trek", "tents", "150"), at=now)],
        "c3": [priced_order(("tent-trek", "tents", "170"), at=now)],
    }
    rules = UpgradeRules(Decimal("1.5"), count=3)
    model = refit(
        ledger,
        as_of=now.date(),
        version=3,
        rules=StandingRules(),
        settings=RefitSettings(upgrades=rules),
    )
    assert model.catalogue.listings["tent-trek"].prices == {"EUR": Decimal(160)}
    assert model.catalogue.listings["tent-trek"].buyers == 2
    assert model.upgrade_rules == rules


@pytest.mark.parametrize(
    ("customers", "cap", "buckets"),
    [
        (0, 1000, SAMPLE_BUCKETS),
        (1000, 1000, SAMPLE_BUCKETS),
        (2000, 1000, 512),
        (10**7, 10**6, 103),
    ],
)
def test_a_refit_reads_a_sample_sized_to_the_cap(customers: int, cap: int, buckets: int) -> None:
    assert sample_buckets(customers, cap) == buckets
    # Never fewer customers than the cap asks for (on average), never none.
    assert buckets * customers / SAMPLE_BUCKETS >= min(cap, customers)

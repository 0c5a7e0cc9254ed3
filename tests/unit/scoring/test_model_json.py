"""A refit's model is stored as JSON and read back the same, expansion included; a model stored
before upgrades existed reads as one without a catalogue."""

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from services.scoring.domain.refit import RefitSettings, refit
from services.scoring.domain.score import ScoringModel
from services.scoring.domain.standing import StandingRules
from services.scoring.domain.upgrades import Catalogue, UpgradeRules
from services.scoring.store import model_from_json, model_to_json
from tests.unit.scoring.ledger_orders import priced_order

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _model() -> ScoringModel:
    ledger = {
        "c1": [priced_order(("tent", "tents", "99.90"), ("stove", None, None), at=NOW)],
        "c2": [priced_order(("tent", "tents", "120.10"), ("mat", "mats", "20"), at=NOW)],
        "c3": [priced_order(("tent-pro", "tents", "400"), at=NOW)],
    }
    settings = RefitSettings(upgrades=UpgradeRules(Decimal("1.25"), count=4))
    return refit(ledger, as_of=NOW.date(), version=4, rules=StandingRules(), settings=settings)


def test_a_model_reads_back_as_it_was_stored() -> None:
    model = _model()
    stored = orjson.loads(orjson.dumps(model_to_json(model)))
    again = model_from_json(stored)
    assert again == model
    assert again.catalogue.listings["tent"].prices == {"EUR": Decimal(110)}
    assert again.co_purchases.neighbours["tent"] == {"mat": 1, "stove": 1}


def test_a_model_from_before_upgrades_has_no_catalogue_and_the_default_rules() -> None:
    stored = orjson.loads(orjson.dumps(model_to_json(_model())))
    del stored["catalogue"], stored["upgrade_rules"]
    old = model_from_json(stored)
    assert old.catalogue == Catalogue()
    assert old.upgrade_rules == UpgradeRules()

"""Upgrades: higher-priced products of the categories a customer buys, from a catalogue priced by
the ledger; never what they have, never cheaper, the same list for the same ledger."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.ledger import LedgerOrder
from services.scoring.domain.recommend import CoPurchases, co_purchases
from services.scoring.domain.upgrades import Catalogue, UpgradeRules, catalogue, upgrades
from tests.unit.scoring.ledger_orders import priced_order as order

# Tents from 110 to 400 EUR, and a stove bought with the trekking tent.
LEDGER = [
    [order(("tent-lite", "tents", "110"))],
    [order(("tent-trek", "tents", "150"), ("stove", "stoves", "40"))],
    [order(("tent-trek", "tents", "170"), ("stove", "stoves", "45"))],
    [order(("tent-trek", "outdoor", "160"))],
    [order(("tent-pro", "tents", "400"))],
    [order(("tent-pro", "tents", "420"))],
    [order(("tent-family", "tents", "300"))],
]


def test_the_ledger_prices_each_product_by_the_median_paid_in_its_usual_category() -> None:
    listings = catalogue(LEDGER).listings
    trek = listings["tent-trek"]
    assert trek.category == "tents"  # two lines say tents, one says outdoor
    assert trek.prices == {"EUR": Decimal(160)}
    assert trek.buyers == 3
    assert listings["tent-pro"].prices == {"EUR": Decimal(410)}  # the middle of 400 and 420


def test_upgrades_are_clearly_dearer_products_of_the_category_bought_together_first() -> None:
    shop = catalogue(LEDGER)
    baskets = [frozenset(o.products) for orders in LEDGER for o in orders]
    camper = [order(("tent-basic", "tents", "100"), ("stove", "stoves", "40"))]
    chosen = upgrades(camper, shop, co_purchases(baskets), UpgradeRules())
    # tent-trek goes with the stove they have; then the best sellers, then by id. Not
    # tent-lite: 110 is not clearly above the 100 they paid (1.2 times is 120). No stove: the
    # only stove is theirs.
    assert chosen == ["tent-trek", "tent-pro", "tent-family"]
    assert upgrades(camper, shop, CoPurchases(), UpgradeRules(count=1)) == ["tent-trek"]
    # At least the ratio times what they paid: 300 is three times 100.
    assert upgrades(camper, shop, CoPurchases(), UpgradeRules(Decimal(3))) == [
        "tent-pro",
        "tent-family",
    ]
    assert upgrades(camper, shop, CoPurchases(), UpgradeRules(Decimal("3.5"))) == ["tent-pro"]


def test_a_customer_at_the_top_of_a_category_or_without_prices_gets_none() -> None:
    shop = catalogue(LEDGER)
    top = [order(("tent-pro", "tents", "400"))]
    assert upgrades(top, shop, CoPurchases(), UpgradeRules()) == []
    unpriced = [order(("tent-basic", "tents", None))]
    assert upgrades(unpriced, shop, CoPurchases(), UpgradeRules()) == []


def test_gifts_and_other_currencies_say_nothing_about_price() -> None:
    shop = catalogue([*LEDGER, [order(("tent-trek", "tents", "0"))]])
    assert shop.listings["tent-trek"].prices == {"EUR": Decimal(160)}  # the gift is not a price
    dollars = [order(("tent-basic", "tents", "100"), currency="USD")]
    assert upgrades(dollars, shop, CoPurchases(), UpgradeRules()) == []  # no tent sells in USD
    no_currency = [order(("tent-basic", "tents", "100"), currency=None)]
    assert upgrades(no_currency, shop, CoPurchases(), UpgradeRules()) == []
    # A free sample in a category does not make everything in it an upgrade.
    sampled = [order(("tent-sample", "tents", "0"))]
    assert upgrades(sampled, shop, CoPurchases(), UpgradeRules()) == []


def test_each_category_keeps_its_best_sellers() -> None:
    shop = catalogue(LEDGER, per_category=2)
    assert set(shop.listings) == {"tent-trek", "tent-pro", "stove"}
    assert shop.shelves[("tents", "EUR")] == ("tent-trek", "tent-pro")


products = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])
categories = st.sampled_from(["x", "y"])
prices = st.sampled_from(["0", "5", "10", "12", "15", "30", "100"])
currencies = st.sampled_from(["EUR", "USD"])
lines = st.tuples(products, categories, prices)
orders = st.builds(
    lambda ls, currency: order(*ls, currency=currency),
    st.lists(lines, min_size=1, max_size=3),
    currencies,
)
customers = st.lists(st.lists(orders, min_size=1, max_size=3), min_size=1, max_size=12)


@given(customers, st.lists(orders, max_size=3))
def test_never_what_they_bought_never_cheaper_and_the_same_for_any_ledger_order(
    ledger: list[list[LedgerOrder]], mine: list[LedgerOrder]
) -> None:
    rules = UpgradeRules()
    shop = catalogue(ledger)
    together = co_purchases(frozenset(p for o in orders for p in o.products) for orders in ledger)
    chosen = upgrades(mine, shop, together, rules)
    bought = {p for o in mine for p in o.products}
    assert not set(chosen) & bought
    assert len(chosen) == len(set(chosen)) <= rules.count
    most_paid: dict[tuple[str, str], Decimal] = {}
    for o in mine:
        for line in o.lines:
            if o.currency and line.category and line.unit_price:
                key = (line.category, o.currency)
                most_paid[key] = max(most_paid.get(key, line.unit_price), line.unit_price)
    for product in chosen:
        listing = shop.listings[product]
        assert any(
            price >= rules.price_ratio * most_paid[(listing.category, currency)]
            for currency, price in listing.prices.items()
            if (listing.category, currency) in most_paid
        )
    backwards = [list(reversed(orders)) for orders in reversed(ledger)]
    together_backwards = co_purchases(
        frozenset(p for o in orders for p in o.products) for orders in backwards
    )
    assert chosen == upgrades(mine, catalogue(backwards), together_backwards, rules)
    assert chosen == upgrades(list(reversed(mine)), shop, together, rules)


def test_an_empty_catalogue_upgrades_nobody() -> None:
    mine = [order(("tent-basic", "tents", "100"))]
    assert upgrades(mine, Catalogue(), CoPurchases(), UpgradeRules()) == []

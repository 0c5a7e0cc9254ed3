"""Upgrades for expansion: higher-priced products in the categories a customer already buys from
(`recommend` gives the complementary half, from co-purchases).

At a refit the ledger gives the catalogue (`catalogue`): every product sold with a category and a
price gets a listing with
- its category: the one most of its order lines name (ties: the first by name);
- its typical unit price in each currency it sold in: the median of the unit prices paid;
- its buyers: how many customers bought it.
Each category keeps its `per_category` best sellers (200): upgrades come from what sells, and the
model stays small. A price counts only when it is above 0 (a gift says nothing about what a
customer pays) and its order names a currency (prices are compared within one currency, never
across).

A customer's upgrades (`upgrades`): products of a category they bought, whose typical unit price
in a currency is at least `price_ratio` (1.2) times the most they paid for a unit in that category
and currency, never one they bought. Best first: the most often bought together with what they
bought (co-purchase counts), then the most buyers, then the product id, so the same ledger always
gives the same list.
"""

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from statistics import median

from services.scoring.domain.ledger import LedgerOrder, OrderLine
from services.scoring.domain.recommend import CoPurchases

_NEVER = Decimal("Infinity")


@dataclass(frozen=True)
class UpgradeRules:
    price_ratio: Decimal = Decimal("1.2")  # "clearly above" the most paid, not a rounding step
    count: int = 5  # per customer, in scores.v1


@dataclass(frozen=True, slots=True)
class Listing:
    category: str
    prices: Mapping[str, Decimal]  # currency -> median unit price paid
    buyers: int


def _best_selling_first(listings: Mapping[str, Listing]) -> list[str]:
    return sorted(listings, key=lambda product: (-listings[product].buyers, product))


@dataclass(frozen=True)
class Catalogue:
    listings: Mapping[str, Listing] = field(default_factory=dict)

    @cached_property
    def shelves(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Per category and currency, the products listed in it, best-selling first."""
        found: dict[tuple[str, str], list[str]] = {}
        for product in _best_selling_first(self.listings):
            listing = self.listings[product]
            for currency in listing.prices:
                found.setdefault((listing.category, currency), []).append(product)
        return {shelf: tuple(products) for shelf, products in found.items()}


def _unit_price(order: LedgerOrder, line: OrderLine) -> tuple[str, Decimal] | None:
    """The currency and price of a unit of the line, when they can be compared with others."""
    if order.currency is None or line.unit_price is None or line.unit_price <= 0:
        return None
    return order.currency, line.unit_price


def catalogue(customers: Iterable[Sequence[LedgerOrder]], *, per_category: int = 200) -> Catalogue:
    """From each customer's orders."""
    named: dict[str, Counter[str]] = {}
    paid: dict[str, dict[str, list[Decimal]]] = {}
    buyers: Counter[str] = Counter()
    for orders in customers:
        bought: set[str] = set()
        for order in orders:
            for line in order.lines:
                bought.add(line.product_id)
                if line.category:
                    named.setdefault(line.product_id, Counter())[line.category] += 1
                if (priced := _unit_price(order, line)) is not None:
                    currency, price = priced
                    paid.setdefault(line.product_id, {}).setdefault(currency, []).append(price)
        buyers.update(bought)
    listings: dict[str, Listing] = {}
    for product, prices in paid.items():
        if product in named:
            counts = named[product]
            category = min(counts, key=lambda name: (-counts[name], name))
            typical = {currency: median(amounts) for currency, amounts in sorted(prices.items())}
            listings[product] = Listing(category, typical, buyers[product])
    by_category: dict[str, list[str]] = {}
    for product in _best_selling_first(listings):
        by_category.setdefault(listings[product].category, []).append(product)
    kept = sorted(p for products in by_category.values() for p in products[:per_category])
    return Catalogue({product: listings[product] for product in kept})


def upgrades(
    orders: Sequence[LedgerOrder],
    catalogue: Catalogue,
    co_purchases: CoPurchases,
    rules: UpgradeRules,
) -> list[str]:
    """The customer's upgrades, best first, from their orders."""
    most_paid: dict[tuple[str, str], Decimal] = {}
    for order in orders:
        for line in order.lines:
            priced = _unit_price(order, line)
            if priced is not None and line.category:
                currency, price = priced
                shelf = (line.category, currency)
                most_paid[shelf] = max(most_paid.get(shelf, price), price)
    if not most_paid:
        return []
    floors = {shelf: price * rules.price_ratio for shelf, price in most_paid.items()}
    bought: frozenset[str] = frozenset().union(*(o.products for o in orders))
    listings = catalogue.listings

    def is_upgrade(product: str) -> bool:
        listing = listings.get(product)
        return (
            listing is not None
            and product not in bought
            and any(
                price >= floors.get((listing.category, currency), _NEVER)
                for currency, price in listing.prices.items()
            )
        )

    together: Counter[str] = Counter()
    for product in bought:
        for other, count in co_purchases.neighbours.get(product, {}).items():
            if is_upgrade(other):
                together[other] += count
    # Beyond co-purchases the ranking follows each shelf's order (best sellers first), so the
    # first `count` upgrades of each shelf are all the candidates there are.
    candidates = set(together)
    for shelf in floors:
        found = 0
        for product in catalogue.shelves.get(shelf, ()):
            if found == rules.count:
                break
            if is_upgrade(product):
                candidates.add(product)
                found += 1

    def rank(product: str) -> tuple[int, int, str]:
        return -together[product], -listings[product].buyers, product

    return heapq.nsmallest(rules.count, candidates, key=rank)

"""Recommendations for expansion: products bought by the customers who bought what this customer
bought (item-to-item co-purchase counts from the ledger).

At a refit, every pair of products bought by one customer counts once for that customer; each
product keeps its `neighbours` most co-purchased products. A customer's recommendations are the
products, not yet bought by them, with the highest summed counts over what they bought; ties go
to the more popular product, then to the product id, so the same ledger always recommends the
same. A customer whose products have no neighbours gets the most popular products.
"""

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

_POPULAR_KEPT = 50


@dataclass(frozen=True)
class CoPurchases:
    neighbours: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    popularity: Mapping[str, int] = field(default_factory=dict)  # customers who bought each
    popular: tuple[str, ...] = ()  # the most bought, most first: the fallback


def co_purchases(baskets: Iterable[frozenset[str]], *, neighbours: int = 20) -> CoPurchases:
    """From each customer's set of products bought."""
    pairs: dict[str, Counter[str]] = {}
    popularity: Counter[str] = Counter()
    for basket in baskets:
        popularity.update(basket)
        for a, b in combinations(sorted(basket), 2):
            pairs.setdefault(a, Counter())[b] += 1
            pairs.setdefault(b, Counter())[a] += 1
    kept = {
        product: dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:neighbours])
        for product, counts in pairs.items()
    }
    popular = sorted(popularity, key=lambda product: (-popularity[product], product))
    top = {product: popularity[product] for product in popular[:_POPULAR_KEPT]}
    # Popularity is kept for the neighbours and the fallback only: ranks need nothing else.
    needed = {other for counts in kept.values() for other in counts} | set(top)
    return CoPurchases(kept, {p: popularity[p] for p in needed}, tuple(popular[:_POPULAR_KEPT]))


def recommend(bought: frozenset[str], model: CoPurchases, *, count: int = 5) -> list[str]:
    scores: Counter[str] = Counter()
    for product in bought:
        for other, together in model.neighbours.get(product, {}).items():
            if other not in bought:
                scores[other] += together
    popularity = model.popularity

    def rank(product: str) -> tuple[int, int, str]:
        return (-scores[product], -popularity.get(product, 0), product)

    chosen = heapq.nsmallest(count, scores, key=rank)  # the best few of many candidates
    if len(chosen) < count:  # too little history: fill with what most customers buy
        fill = [p for p in model.popular if p not in bought and p not in scores]
        chosen += fill[: count - len(chosen)]
    return chosen

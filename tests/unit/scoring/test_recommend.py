"""Recommendations from co-purchases: what buyers of the same products bought, never what the
customer has, deterministic, with a fallback to what is popular."""

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.recommend import co_purchases, recommend

BASKETS = [
    frozenset({"tent", "stove", "mat"}),
    frozenset({"tent", "stove"}),
    frozenset({"tent", "lamp"}),
    frozenset({"boots", "socks"}),
    frozenset({"socks"}),
]


def test_buyers_of_the_same_products_say_what_to_recommend() -> None:
    model = co_purchases(BASKETS)
    assert recommend(frozenset({"tent"}), model, count=2) == ["stove", "lamp"]
    assert recommend(frozenset({"boots"}), model, count=1) == ["socks"]


def test_without_co_purchases_the_most_popular_fill_in() -> None:
    model = co_purchases(BASKETS)
    assert recommend(frozenset({"kayak"}), model, count=2) == ["tent", "socks"]
    assert recommend(frozenset({"boots"}), model, count=3) == ["socks", "tent", "stove"]


products = st.sampled_from(["a", "b", "c", "d", "e", "f"])
baskets = st.lists(st.frozensets(products, min_size=1, max_size=4), max_size=20)


@given(baskets, st.frozensets(products))
def test_never_what_the_customer_has_and_the_same_for_any_basket_order(
    history: list[frozenset[str]], bought: frozenset[str]
) -> None:
    chosen = recommend(bought, co_purchases(history), count=3)
    assert not set(chosen) & bought
    assert len(chosen) == len(set(chosen)) <= 3
    assert chosen == recommend(bought, co_purchases(list(reversed(history))), count=3)

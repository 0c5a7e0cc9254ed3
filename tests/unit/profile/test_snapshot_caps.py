"""A snapshot's collections are capped so it always fits in a Kafka message (1 MB)."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import to_json

from schemas._types import MAX_ID, MAX_NAME, MAX_TEXT
from schemas.topics.profiles_v1 import (
    MAX_CART_LINES,
    MAX_COLLECTION_BYTES,
    MAX_LISTED_CATEGORIES,
    MAX_LISTED_CURRENCIES,
    MAX_LISTED_IDS,
    MAX_LISTED_PRODUCTS,
    MAX_TRAITS,
    ProfileSnapshot,
)
from services.profile.domain import ProfileState, fold, to_snapshot, with_cross_customer_figures
from services.profile.domain.snapshot import _capped, _json_size
from services.profile.domain.state import (
    CartChange,
    ConsentRecord,
    Item,
    Order,
    Refund,
    Register,
    Touch,
)
from tests.unit.profile.factory import Events, at

KAFKA_LIMIT = 1_000_000
OVER = 50  # entries beyond each cap in the worst case
# Money has no length limit in its type: ~430 characters, far beyond any real sum.
LONG_MONEY = Decimal("9" * 28 + "E-400")


def text(n: int, char: str, tag: object = "") -> str:
    """`n` characters; `tag` first keeps strings of one collection distinct."""
    prefix = str(tag)
    return prefix + char * (n - len(prefix))


def _snap(state: ProfileState, **figures: Any) -> ProfileSnapshot:
    return to_snapshot(state, customer_id="c1", revision=1, updated_at=at(0), **figures)


def _counts(snapshot: ProfileSnapshot) -> list[int | None]:
    """The full count beside every capped collection."""
    commerce = snapshot.commerce
    return [
        snapshot.anonymous_ids_count,
        snapshot.merged_customer_ids_count,
        snapshot.traits_count,
        commerce.products_purchased_count,
        commerce.categories_purchased_count,
        commerce.currencies_count,
        snapshot.cart.lines_count,
        snapshot.referrals.currencies_count,
    ]


def worst_state(char: str) -> ProfileState:
    """Every collection beyond its cap, every string at its longest, written with `char`."""
    currencies = [f"Q{a}{b}" for a in "ABCDE" for b in "ABCDE"][: MAX_LISTED_CURRENCIES + OVER]
    items = tuple(
        Item(
            product_id=text(MAX_ID, char, i),
            sku=text(MAX_ID, char, i),
            name=text(MAX_TEXT, char, i),
            category=text(MAX_TEXT, char, i),
            quantity=10**6,
            price=LONG_MONEY,
        )
        for i in range(max(MAX_LISTED_PRODUCTS, MAX_LISTED_CATEGORIES, MAX_CART_LINES) + OVER)
    )
    orders = {
        f"o{i}": Order(f"o{i}", at(i), f"m{i}", at(i), LONG_MONEY, currency, items)
        for i, currency in enumerate(currencies)
    }
    long_text = text(MAX_TEXT, char)
    return ProfileState(
        user_id=Register(at(0), "m", text(MAX_ID, char)),
        anonymous_ids={text(MAX_ID, char, i) for i in range(MAX_LISTED_IDS + OVER)},
        email=Register(at(0), "m", text(126, char) + "@" + text(127, char)),
        traits={
            text(MAX_NAME, char, i): Register(at(i), "m", [text(MAX_TEXT, char)] * 4)
            for i in range(MAX_TRAITS + OVER)
        },
        timezone=Register(at(0), "m", text(MAX_NAME, char)),
        locale=Register(at(0), "m", text(MAX_NAME, char)),
        consent=ConsentRecord(at(0), "m", opted_in=True, source=long_text),
        first_touch=Touch(at(0), "m", "affiliate", *[long_text] * 7),
        referral_code=Register(at(0), "m", text(MAX_ID, char)),
        referrer_user_id=Register(at(0), "m", text(MAX_ID, char)),
        affiliate=Register(at(0), "m", long_text),
        page_views=2**62,
        product_views=2**62,
        cart_adds=2**62,
        checkouts_started=2**62,
        orders=orders,
        refunds={"r1": Refund("o1", LONG_MONEY / 2)},
        cancellations={"o2": at(2)},
        cart={
            f"c{i}": CartChange(
                at(1000 + i), f"c{i}", str(i), 10**6, item, text(MAX_ID, char), "QAA"
            )
            for i, item in enumerate(items)
        },
        emails_sent=2**62,
        tickets_opened={str(i) for i in range(10)},
        reviews=2**62,
        ratings=3,
        rating_sum=Decimal(14),
        points_redeemed=2**62,
    )


@pytest.mark.parametrize("char", ["x", "\x01"], ids=["plain", "escaped"])
def test_the_worst_case_snapshot_fits_in_a_kafka_message(char: str) -> None:
    """At most 8 capped collections of 64 KiB each, and fields whose types bound them.

    Measured: about 330 kB with plain characters, 460 kB with "\x01", the widest character in
    JSON (six bytes: "\u0001").
    """
    state = worst_state(char)
    snapshot = with_cross_customer_figures(
        to_snapshot(
            state,
            customer_id=text(MAX_ID, char),
            revision=2**62,
            updated_at=at(0),
            referred_by_customer_id=text(MAX_ID, char),
        ),
        merged_customer_ids=[text(MAX_ID, char, i) for i in range(MAX_LISTED_IDS + OVER)],
        referred_customers_count=2**62,
        referred_revenue_by_currency={f"R{a}{b}": LONG_MONEY for a in "ABCDEFG" for b in "ABCDEFG"},
    )
    size = len(snapshot.model_dump_json().encode())
    assert size < KAFKA_LIMIT, size
    assert None not in _counts(snapshot)  # every capped collection was cut: the worst case


def test_thirty_thousand_anonymous_ids_give_the_first_hundred_and_the_count() -> None:
    ids = {f"anon-{i:05d}" for i in range(30_000)}
    snapshot = _snap(ProfileState(anonymous_ids=ids))
    assert snapshot.anonymous_ids == sorted(ids)[:MAX_LISTED_IDS]
    assert snapshot.anonymous_ids_count == 30_000
    assert len(snapshot.model_dump_json()) < 10_000


def test_complete_collections_have_no_count() -> None:
    ev = Events(anonymous_id="a1")
    snapshot = _snap(
        fold(
            ProfileState(),
            [
                ev.identify({"plan": "pro"}),
                ev.order("o1", 10, products=[{"product_id": "p1", "category": "shoes"}]),
                ev.track("Product Added", {"product_id": "p2", "price": 5}, hours=1),
            ],
        ),
        merged_customer_ids=["c2"],
        referred_revenue_by_currency={"USD": Decimal(3)},
    )
    assert snapshot.anonymous_ids == ["a1"]
    assert snapshot.commerce.products_purchased == ["p1"]
    assert len(snapshot.cart.items) == 1
    assert _counts(snapshot) == [None] * 8


def test_traits_keep_the_most_recently_set_and_pass_over_one_too_large() -> None:
    traits: dict[str, Register[Any]] = {
        f"t{i:03d}": Register(at(i), "m", i) for i in range(MAX_TRAITS + 10)
    }
    traits["huge"] = Register(at(10_000), "m", "x" * MAX_COLLECTION_BYTES)
    snapshot = _snap(ProfileState(traits=traits))
    newest = [f"t{i:03d}" for i in range(10, MAX_TRAITS + 10)]
    assert list(snapshot.traits) == newest  # by name
    assert snapshot.traits_count == MAX_TRAITS + 11


def test_traits_stop_at_the_byte_cap() -> None:
    value = "v" * 1000
    traits = {f"t{i:03d}": Register(at(0), "m", value) for i in range(100)}
    snapshot = _snap(ProfileState(traits=traits))
    assert len(snapshot.model_dump_json(include={"traits"})) <= MAX_COLLECTION_BYTES + 20
    kept = len(snapshot.traits)
    assert 60 <= kept < 100
    assert list(snapshot.traits) == sorted(traits)[:kept]  # one event set them all: by name
    assert snapshot.traits_count == 100


def _order(i: int, currency: str, items: tuple[Item, ...], revenue: int = 10) -> Order:
    return Order(f"o{i}", at(i), f"m{i}", at(i), Decimal(revenue), currency, items)


def test_products_and_categories_keep_the_most_recently_bought() -> None:
    n = MAX_LISTED_PRODUCTS + 5
    orders = {
        f"o{i}": _order(i, "EUR", (Item(product_id=f"p{i:03d}", category=f"c{i:03d}"),))
        for i in range(n)
    }
    commerce = _snap(ProfileState(orders=orders)).commerce
    assert commerce.products_purchased == [f"p{i:03d}" for i in range(5, n)]
    assert commerce.categories_purchased == [f"c{i:03d}" for i in range(5, n)]
    assert (commerce.products_purchased_count, commerce.categories_purchased_count) == (n, n)
    assert commerce.items_purchased == n


def test_long_categories_stop_at_the_byte_cap() -> None:
    items = tuple(Item(product_id="p", category=text(MAX_TEXT, "c", i)) for i in range(100))
    commerce = _snap(ProfileState(orders={"o": _order(0, "EUR", items)})).commerce
    assert len(commerce.categories_purchased) == MAX_COLLECTION_BYTES // (MAX_TEXT + 3)
    assert commerce.categories_purchased_count == 100


def test_revenue_by_currency_keeps_the_main_currency_then_the_largest() -> None:
    orders = {"o-main-1": _order(0, "AAA", (), 1), "o-main-2": _order(1, "AAA", (), 1)}
    others = [f"Z{a}{b}" for a in "ABCDE" for b in "ABCDE"]
    orders |= {c: _order(2 + i, c, (), 100 + i) for i, c in enumerate(others)}
    commerce = _snap(ProfileState(orders=orders)).commerce
    assert commerce.currency == "AAA"
    largest = others[-(MAX_LISTED_CURRENCIES - 1) :]
    assert list(commerce.revenue_by_currency) == ["AAA", *largest]
    assert commerce.revenue_by_currency["AAA"] == Decimal(2)
    assert commerce.currencies_count == len(others) + 1


def test_the_cart_lists_the_most_recently_added_lines_and_counts_them_all() -> None:
    n = MAX_CART_LINES + 7
    cart = {
        f"m{i}": CartChange(
            at(i), f"m{i}", f"p{i:03d}", 2, Item(product_id=f"p{i:03d}", price=Decimal("1.5"))
        )
        for i in range(n)
    }
    snapshot = _snap(ProfileState(cart=cart))
    assert [item.product_id for item in snapshot.cart.items] == [f"p{i:03d}" for i in range(7, n)]
    assert snapshot.cart.lines_count == n
    assert (snapshot.cart.items_count, snapshot.cart.value) == (2 * n, Decimal("3.0") * n)


def test_caps_do_not_depend_on_insertion_order() -> None:
    traits = [(f"t{i:03d}", Register(at(i % 7), f"m{i % 3}", i)) for i in range(MAX_TRAITS + 40)]
    forward = _snap(ProfileState(traits=dict(traits)))
    backward = _snap(ProfileState(traits=dict(reversed(traits))))
    assert forward.model_dump_json() == backward.model_dump_json()
    assert forward.traits_count == MAX_TRAITS + 40


@given(
    entries=st.lists(st.text(max_size=3000), unique=True, max_size=60),
    limit=st.integers(1, 80),
)
def test_the_one_pass_check_keeps_what_the_entry_by_entry_cap_keeps(
    entries: list[str], limit: int
) -> None:
    # When everything fits, one serialisation of the whole list decides; it must never keep
    # anything the entry-by-entry rule would not (forced here by a `whole` that never fits).
    fast = _capped(entries, limit)
    by_entry = _capped(entries, limit, whole=lambda _: 10**9)
    assert fast == by_entry
    traits = {f"t{i}": value for i, value in enumerate(entries)}
    names = sorted(traits)
    assert _capped(
        names,
        limit,
        lambda n: _json_size(n) + _json_size(traits[n]),
        lambda ns: len(to_json({n: traits[n] for n in ns})),
    ) == _capped(names, limit, lambda n: _json_size(n) + _json_size(traits[n]), lambda _: 10**9)

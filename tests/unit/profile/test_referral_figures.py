"""Referral revenue is stated in one currency, chosen by a rule, and never summed across them."""

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas.topics.profiles_v1 import MAX_LISTED_CURRENCIES, MAX_LISTED_IDS, ProfileSnapshot
from services.profile.domain import (
    LoyaltyRule,
    ProfileState,
    fold,
    to_snapshot,
    with_cross_customer_figures,
)
from tests.unit.profile.factory import Events, at

EUR_BUYER = fold(ProfileState(), [Events().order("o1", 50, currency="EUR")])


def _own(state: ProfileState = EUR_BUYER) -> ProfileSnapshot:
    return to_snapshot(state, customer_id="c1", revision=2, updated_at=at(5))


def _referrals(by_currency: dict[str, Decimal], state: ProfileState = EUR_BUYER) -> ProfileSnapshot:
    return with_cross_customer_figures(
        _own(state),
        merged_customer_ids=[],
        referred_customers_count=3,
        referred_revenue_by_currency=by_currency,
    )


def test_the_referrers_own_currency_is_used_when_the_referred_bought_in_it() -> None:
    referrals = _referrals({"USD": Decimal("900"), "EUR": Decimal("10.50")}).referrals
    assert (referrals.currency, referrals.referred_revenue) == ("EUR", Decimal("10.50"))
    assert referrals.revenue_by_currency == {"EUR": Decimal("10.50"), "USD": Decimal("900")}
    assert referrals.referred_customers_count == 3


def test_mixed_currencies_are_never_summed() -> None:
    dumped = json.loads(
        _referrals({"EUR": Decimal("10.50"), "USD": Decimal("20.25")}).model_dump_json()
    )["referrals"]
    assert dumped["referred_revenue"] == "10.50"  # not 30.75
    assert dumped["revenue_by_currency"] == {"EUR": "10.50", "USD": "20.25"}


def test_a_bought_in_currency_counts_even_when_refunded_to_zero() -> None:
    referrals = _referrals({"EUR": Decimal("0.00"), "USD": Decimal(5)}).referrals
    assert (referrals.currency, referrals.referred_revenue) == ("EUR", Decimal("0.00"))


def test_otherwise_the_largest_currency_is_used() -> None:
    referrals = _referrals({"GBP": Decimal(7), "USD": Decimal("7.01")}).referrals
    assert (referrals.currency, referrals.referred_revenue) == ("USD", Decimal("7.01"))
    # A referrer who never ordered has no currency of their own.
    no_orders = _referrals({"GBP": Decimal(8), "USD": Decimal(7)}, ProfileState()).referrals
    assert (no_orders.currency, no_orders.referred_revenue) == ("GBP", Decimal(8))


def test_a_tie_goes_to_the_alphabetically_first_currency() -> None:
    referrals = _referrals({"USD": Decimal("5.0"), "GBP": Decimal(5), "JPY": Decimal(1)}).referrals
    assert (referrals.currency, referrals.referred_revenue) == ("GBP", Decimal(5))


def test_no_referred_revenue_has_no_currency() -> None:
    referrals = _referrals({}).referrals
    assert (referrals.currency, referrals.referred_revenue) == (None, Decimal(0))
    assert referrals.revenue_by_currency == {}


def test_amounts_are_exact_beyond_decimals_default_precision() -> None:
    # 40 significant digits; Decimal arithmetic would round them to 28.
    exact = Decimal("123456789012.3456789012345678901234567891")
    referrals = _referrals({"EUR": exact}).referrals
    assert referrals.referred_revenue == exact
    dumped = json.loads(referrals.model_dump_json())
    assert dumped["referred_revenue"] == "123456789012.3456789012345678901234567891"
    # Two amounts equal to 28 digits: the larger one still wins.
    close = {
        "AUD": Decimal("1.0000000000000000000000000000001"),
        "CAD": Decimal("1.0000000000000000000000000000002"),
    }
    assert _referrals(close).referrals.currency == "CAD"


def test_many_currencies_are_capped_keeping_the_one_stated() -> None:
    codes = [f"Q{a}{b}" for a in "ABCDE" for b in "ABCDE"]
    by_currency = {code: Decimal(100 + i) for i, code in enumerate(codes)} | {"EUR": Decimal(1)}
    referrals = _referrals(by_currency).referrals
    assert referrals.currency == "EUR"
    assert list(referrals.revenue_by_currency) == [
        "EUR",
        *codes[-(MAX_LISTED_CURRENCIES - 1) :],
    ]
    assert referrals.currencies_count == len(by_currency)


def test_merged_ids_are_capped_here_too() -> None:
    ids = [f"cus_{i:04d}" for i in range(MAX_LISTED_IDS + 30)]
    snapshot = with_cross_customer_figures(
        _own(),
        merged_customer_ids=reversed(ids),
        referred_customers_count=0,
        referred_revenue_by_currency={},
    )
    assert snapshot.merged_customer_ids == ids[:MAX_LISTED_IDS]
    assert snapshot.merged_customer_ids_count == len(ids)


_states = st.sampled_from(
    [
        ProfileState(),
        EUR_BUYER,
        fold(
            ProfileState(),
            [
                Events().order("o1", 20, currency="USD"),
                Events().order("o2", 30, currency="USD", hours=1),
                Events().order("o3", 99, currency="EUR", hours=2),
            ],
        ),
    ]
)
_codes = st.sampled_from(
    ["EUR", "USD", "GBP", "JPY", *(f"Q{a}{b}" for a in "ABCDE" for b in "ABCDEF")]
)


@given(
    state=_states,
    merged=st.lists(st.from_regex(r"cus_[a-z0-9]{1,6}", fullmatch=True), max_size=150),
    count=st.integers(0, 10**6),
    by_currency=st.dictionaries(
        _codes, st.decimals(min_value=0, max_value=10**12, places=4), max_size=30
    ),
)
def test_adding_cross_customer_figures_equals_building_with_them(
    state: ProfileState, merged: list[str], count: int, by_currency: dict[str, Decimal]
) -> None:
    rule = LoyaltyRule(points_per_unit=Decimal(2))
    own = to_snapshot(state, customer_id="c1", revision=3, updated_at=at(10), loyalty=rule)
    direct = to_snapshot(
        state,
        customer_id="c1",
        revision=3,
        updated_at=at(10),
        loyalty=rule,
        merged_customer_ids=merged,
        referred_customers_count=count,
        referred_revenue_by_currency=by_currency,
    )
    added = with_cross_customer_figures(
        own,
        merged_customer_ids=merged,
        referred_customers_count=count,
        referred_revenue_by_currency=by_currency,
    )
    assert added == direct
    assert added.model_dump_json() == direct.model_dump_json()
    referrals = added.referrals
    assert referrals.referred_revenue == by_currency.get(referrals.currency or "", Decimal(0))
    assert set(referrals.revenue_by_currency) <= set(by_currency)

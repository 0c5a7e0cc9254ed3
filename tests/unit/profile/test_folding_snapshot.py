"""The fold's shell builds each snapshot once and adds the figures that span customers after.

That must give exactly the snapshot `to_snapshot` builds when it is handed those figures.
"""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas.topics.profiles_v1 import ProfileSnapshot
from services.profile.domain import (
    LoyaltyRule,
    ProfileState,
    fold,
    to_snapshot,
    with_cross_customer_figures,
)
from tests.unit.profile.factory import Events, at

RULE = LoyaltyRule(points_per_unit=Decimal(2))


def _states() -> list[ProfileState]:
    shopper = Events(user_id="u1", anonymous_id="a1")
    referred = Events(user_id="u2", anonymous_id=None)
    return [
        ProfileState(),
        fold(
            ProfileState(),
            [
                shopper.page(campaign={"source": "google", "medium": "cpc"}),
                shopper.identify({"email": "U1@Shop.Example", "accepts_marketing": True}),
                shopper.order("o-1", 120.5, products=[{"product_id": "p1", "price": 120.5}]),
                shopper.track("Order Refunded", {"order_id": "o-1", "total": 20}, hours=2),
            ],
        ),
        fold(
            ProfileState(),
            [
                referred.track(
                    "Referral Code Used", {"referral_code": "FRIEND", "referrer_id": "u1"}
                ),
                referred.order("o-2", 30, hours=1),
            ],
        ),
    ]


@given(
    merged=st.lists(st.sampled_from(["cus_a", "cus_b", "cus_c"]), max_size=4),
    count=st.integers(0, 1000),
    revenue=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
)
def test_adding_cross_customer_figures_equals_building_with_them(
    merged: list[str], count: int, revenue: Decimal
) -> None:
    for state in _states():
        direct = _build(
            state,
            merged_customer_ids=merged,
            referred_customers_count=count,
            referred_revenue_by_currency={"EUR": revenue},
        )
        added = with_cross_customer_figures(
            _build(state),
            merged_customer_ids=merged,
            referred_customers_count=count,
            referred_revenue_by_currency={"EUR": revenue},
        )
        assert added == direct
        assert added.model_dump_json() == direct.model_dump_json()


def _build(
    state: ProfileState,
    merged_customer_ids: list[str] | None = None,
    referred_customers_count: int = 0,
    referred_revenue_by_currency: dict[str, Decimal] | None = None,
) -> ProfileSnapshot:
    return to_snapshot(
        state,
        customer_id="cus_1",
        revision=3,
        updated_at=at(10),
        loyalty=RULE,
        referred_by_customer_id="cus_referrer",
        merged_customer_ids=merged_customer_ids or [],
        referred_customers_count=referred_customers_count,
        referred_revenue_by_currency=referred_revenue_by_currency,
    )

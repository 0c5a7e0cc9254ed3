"""The projection scoring decodes reads each field as the whole snapshot does."""

from datetime import UTC, datetime
from decimal import Decimal

from schemas.topics.profiles_v1 import (
    Activity,
    Commerce,
    EmailEngagement,
    Loyalty,
    ProfileSnapshot,
    Referrals,
    Support,
)
from services.scoring.domain.profile_view import ScoredProfile


def test_the_projection_holds_what_the_snapshot_says() -> None:
    snapshot = ProfileSnapshot(
        customer_id="cus_1",
        revision=7,
        updated_at=datetime(2026, 12, 2, 9, tzinfo=UTC),
        activity=Activity(
            first_seen_at=datetime(2026, 11, 1, 8, tzinfo=UTC),
            page_views=9,
            product_views=5,
            cart_adds=3,
            checkouts_started=2,
        ),
        commerce=Commerce(
            currency="EUR",
            revenue_by_currency={"EUR": Decimal("120.50"), "USD": Decimal(3)},
            orders_count=3,
        ),
        referrals=Referrals(revenue_by_currency={"EUR": Decimal("10.10")}),
        support=Support(average_rating=4.5),
        email_engagement=EmailEngagement(clicked_count=2),
        loyalty=Loyalty(points_redeemed=300),
        traits={"affiliate": True, "name": "Ann"},
    )
    view = ScoredProfile.model_validate_json(snapshot.model_dump_json())
    assert (view.customer_id, view.revision, view.updated_at) == (
        snapshot.customer_id,
        snapshot.revision,
        snapshot.updated_at,
    )
    funnel = ("first_seen_at", "product_views", "cart_adds", "checkouts_started")
    assert [getattr(view.activity, name) for name in funnel] == [
        getattr(snapshot.activity, name) for name in funnel
    ]
    assert view.commerce.orders_count == snapshot.commerce.orders_count
    assert view.commerce.currency == snapshot.commerce.currency
    assert view.commerce.revenue_by_currency == snapshot.commerce.revenue_by_currency
    assert view.referrals.revenue_by_currency == snapshot.referrals.revenue_by_currency
    assert view.support.average_rating == snapshot.support.average_rating
    assert view.email_engagement.clicked_count == snapshot.email_engagement.clicked_count
    assert view.loyalty.points_redeemed == snapshot.loyalty.points_redeemed
    assert view.traits == snapshot.traits


def test_a_bare_snapshot_gives_the_snapshots_defaults() -> None:
    snapshot = ProfileSnapshot(
        customer_id="cus_2", revision=1, updated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    view = ScoredProfile.of(snapshot)
    assert view.commerce.revenue_by_currency == {}
    assert view.support.average_rating is None
    assert view.loyalty.points_redeemed == 0

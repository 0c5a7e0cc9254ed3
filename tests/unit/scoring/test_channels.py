"""Channel economics: touched, converted, new customers, spend, CPA and CLV:CPA per channel,
campaign, affiliate, month and currency."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.channels import Acquired, Spend, channel_figures

JAN, FEB = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC)


def customer(
    channel: str, *, ordered: datetime | None, campaign: str | None = None, value: int = 100
) -> Acquired:
    return Acquired(
        channel, campaign, None, JAN, ordered, "EUR", Decimal(value), Decimal(value // 2)
    )


def test_cpa_and_clv_to_cpa_per_channel_and_month() -> None:
    customers = [
        customer("paid_search", ordered=JAN, campaign="brand"),
        customer("paid_search", ordered=JAN, campaign="brand", value=300),
        customer("paid_search", ordered=None, campaign="brand"),
        customer("social", ordered=FEB),
    ]
    spend = [Spend("paid_search", "brand", "2026-01", Decimal(100), "EUR")]
    rows = {(r.channel, r.month): r for r in channel_figures(customers, spend)}
    search = rows[("paid_search", "2026-01")]
    assert (search.touched, search.converted, search.new_customers) == (3, 2, 2)
    assert search.conversion_rate == 2 / 3
    assert search.cpa == Decimal("50.00")
    assert search.average_clv_historical == Decimal("200.00")
    assert search.average_clv_predicted == Decimal("100.00")
    assert search.clv_to_cpa == 6.0  # (200 + 100) / 50
    social_jan, social_feb = rows[("social", "2026-01")], rows[("social", "2026-02")]
    assert (social_jan.touched, social_jan.new_customers) == (1, 0)
    assert (social_feb.new_customers, social_feb.cpa) == (1, None)  # no spend recorded


def test_spend_without_customers_still_shows_and_has_no_cpa() -> None:
    [row] = channel_figures([], [Spend("affiliate", None, "2026-03", Decimal(80), "EUR")])
    assert (row.spend, row.new_customers, row.cpa) == (Decimal(80), 0, None)


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=30),
    st.integers(1, 10_000_00).map(lambda cents: Decimal(cents) / 100),
)
def test_channel_wide_spend_is_shared_exactly_across_campaigns(
    buyers: list[tuple[str, bool]], amount: Decimal
) -> None:
    customers = [
        customer("email", ordered=JAN if bought else None, campaign=campaign)
        for campaign, bought in buyers
    ]
    rows = channel_figures(customers, [Spend("email", None, "2026-01", amount, "EUR")])
    assert sum(r.spend or 0 for r in rows) == amount  # never more, never less, in cents


def test_a_customer_without_a_first_touch_counts_from_when_first_seen() -> None:
    from schemas.topics.profiles_v1 import Activity, Commerce, ProfileSnapshot
    from services.scoring.domain.channels import acquired

    profile = ProfileSnapshot(
        customer_id="c1",
        revision=1,
        updated_at=FEB,
        activity=Activity(first_seen_at=JAN),
        commerce=Commerce(currency="EUR", first_order_at=FEB),
    )
    unscored = acquired(profile, {})
    assert (unscored.first_touch_at, unscored.currency, unscored.clv_historical) == (
        JAN,
        "EUR",
        Decimal(0),
    )
    scored = acquired(profile, {"currency": "USD", "clv_historical": "12.5"})
    assert (scored.currency, scored.clv_historical) == ("USD", Decimal("12.5"))

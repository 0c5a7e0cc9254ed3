"""A synthetic shop for the scoring benchmarks: customers with an order history (scoring's
ledger) and the profiles.v1 snapshots the profile service would publish for them.

Each customer has orders of 1 to 3 products (from a catalogue of 400 products in 20
categories) over the last two years, drawn as the CLV models assume (for 20,000 customers: 57%
one order, 20% two, 9% three, the rest up to ~90; ~2.4 on average), and a snapshot (~2.3 KB of
JSON) with what a real one carries: identity, traits, consent, first-touch acquisition,
activity, commerce (orders, revenue, products and categories bought) and email engagement.

`snapshot(customer, revision)` is the profile after `revision` changes: every change is a
further refund of one cent (`refunded_revenue` 0.50 at revision 1, 0.51 at revision 2, ...)
with more page views. So each change lowers the customer's net revenue, hence their historical
CLV, and scoring publishes a new scores.v1 record for it; the change is too small to move a
customer across a tier or RFM bound, so it announces no transitions (nearly none).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.topics.profiles_v1 import (
    Acquisition,
    Activity,
    Channel,
    Commerce,
    Consent,
    EmailEngagement,
    Loyalty,
    ProfileSnapshot,
)
from services.scoring.domain.score import LedgerOrder

CENT = Decimal("0.01")
FIRST_REFUND = Decimal("0.50")
CATEGORIES = [f"category-{n:02d}" for n in range(20)]
PRODUCTS = [(f"sku-{n:04d}", CATEGORIES[n % len(CATEGORIES)]) for n in range(400)]
# BG/NBD parameters (CDNOW's, with time in days), Gamma-Gamma's (order values in EUR) and the
# most orders a customer has.
R, ALPHA_DAYS, A, B = 0.24, 4.41 * 7, 0.79, 2.43
P, Q, V = 6.25, 3.74, 15.44
MAX_ORDERS = 100  # a bound that (nearly) never binds: a cap would distort the fit
CHANNELS: list[Channel] = [
    "direct",
    "search",
    "paid_search",
    "social",
    "email",
    "referral",
    "affiliate",
]


@dataclass(frozen=True)
class Customer:
    number: int
    customer_id: str
    orders: tuple[LedgerOrder, ...]  # oldest first
    items: int

    @property
    def gross(self) -> Decimal:
        return sum((o.revenue for o in self.orders), Decimal(0))

    def net(self, revision: int) -> Decimal:
        """Net revenue after `revision` changes: what historical CLV is then."""
        return self.gross - refunded(revision)


def refunded(revision: int) -> Decimal:
    return FIRST_REFUND + (revision - 1) * CENT


def customers(count: int, now: datetime, seed: int = 2026, first: int = 0) -> list[Customer]:
    """`count` customers numbered from `first`, the same ones for the same arguments.

    Their orders follow the BG/NBD story the model assumes (so the refit converges whatever the
    count): a first order 30 to 730 days ago, then orders at a Poisson rate lambda ~ Gamma(r,
    alpha) until the customer drops out (probability p ~ Beta(a, b) after each repeat order), with
    CDNOW-like parameters in days. Order values
    follow Gamma-Gamma: Gamma(p, rate nu) with the customer's nu ~ Gamma(q, rate v).
    """
    found = []
    for number in range(first, first + count):
        rng = random.Random(seed * 1_000_003 + number)
        rate = rng.gammavariate(R, 1 / ALPHA_DAYS)
        dropout = rng.betavariate(A, B)
        spend = rng.gammavariate(Q, 1 / V)  # the customer's nu: their orders' values
        at = now - timedelta(days=rng.uniform(30, 730))
        orders: list[LedgerOrder] = []
        items = 0
        while at < now and len(orders) < MAX_ORDERS:
            bought = rng.sample(PRODUCTS, rng.randint(1, 3))
            quantities = [rng.randint(1, 2) for _ in bought]
            value = max(1.0, rng.gammavariate(P, 1 / spend))
            revenue = Decimal(repr(value)).quantize(CENT)
            items += sum(quantities)
            orders.append(
                LedgerOrder(
                    f"ord-{number}-{len(orders)}",
                    at,
                    revenue,
                    "EUR",
                    frozenset(category for _, category in bought),
                    frozenset(sku for sku, _ in bought),
                )
            )
            if len(orders) > 1 and rng.random() < dropout:  # only after a repeat order
                break
            # Capped: a tiny rate's wait would leave the calendar (and ends after now anyway).
            at += timedelta(days=min(rng.expovariate(rate) if rate > 0 else 1e4, 1e4))
        found.append(Customer(number, f"cus_{number:07d}", tuple(orders), items))
    return found


def snapshot(customer: Customer, revision: int, updated_at: datetime) -> ProfileSnapshot:
    """The customer's profile after `revision` changes (revision 1: as seeded)."""
    number, orders = customer.number, customer.orders
    first, last = orders[0].at, orders[-1].at
    user = f"user-{number}"
    email = f"{user}@shop.example"
    net = customer.net(revision)
    return ProfileSnapshot(
        customer_id=customer.customer_id,
        revision=revision,
        updated_at=updated_at,
        user_id=user,
        anonymous_ids=sorted(f"anon-{number}-{d}" for d in range(1 + number % 2)),
        email=email,
        traits={
            "email": email,
            "first_name": f"First{number % 97}",
            "last_name": f"Last{number % 89}",
            "country": ["DE", "FR", "NL", "AT", "IT"][number % 5],
        },
        timezone="Europe/Berlin",
        locale="de-DE",
        consent=Consent(
            email_marketing="opted_in" if number % 3 else "unknown",
            email_marketing_changed_at=first - timedelta(days=1) if number % 3 else None,
            email_marketing_source="identify" if number % 3 else None,
        ),
        acquisition=Acquisition(
            first_touch_at=first - timedelta(days=2),
            channel=CHANNELS[number % len(CHANNELS)],
            source=["google", "newsletter", "instagram", "partner"][number % 4],
            medium=["cpc", "email", "social", "referral"][number % 4],
            campaign=f"campaign-{number % 12}",
            landing_page_url=f"https://shop.example/landing/{number % 30}",
        ),
        activity=Activity(
            first_seen_at=first - timedelta(days=2),
            last_seen_at=updated_at,
            page_views=20 + number % 50 + revision,
            product_views=8 + number % 20,
            active_days=len(orders) + 2,
        ),
        commerce=Commerce(
            currency="EUR",
            orders_count=len(orders),
            gross_revenue=customer.gross,
            refunded_revenue=refunded(revision),
            net_revenue=net,
            average_order_value=(customer.gross / len(orders)).quantize(CENT),
            first_order_at=first,
            last_order_at=last,
            items_purchased=customer.items,
            products_purchased=sorted(set().union(*(o.products for o in orders))),
            categories_purchased=sorted(set().union(*(o.categories for o in orders))),
            revenue_by_currency={"EUR": net},
        ),
        email_engagement=EmailEngagement(
            sent_count=6, opened_count=3, clicked_count=number % 2, last_sent_at=last
        ),
        loyalty=Loyalty(points_earned=int(net), points_balance=int(net)),
    )

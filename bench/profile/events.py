"""Realistic storefront traffic for the profile benchmark, as valid touchpoints.v1 values.

Each simulated shopper arrives anonymously on one device, browses (page views, product views,
cart adds), and most sign in: an identify links the anonymous id to their userId, after which
their events carry both. Some come back on a second device (a new anonymous id), identify there
too, and order. Orders carry two or three products. Events of all shoppers are interleaved by
time, as a storefront's traffic is, and are keyed by customer key (userId, else anonymousId),
so a shopper's anonymous and signed-in events usually land on different partitions and the
profile has to merge them.

Everything is derived from a seed, so a run is reproducible; the expected totals (orders,
revenue, page views, customers) are counted while generating, to check the profiles against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.parse import parse_event
from schemas.topics.touchpoints_v1 import Touchpoint, stamp

SOURCE_ID = "bench-storefront"
_START = datetime(2026, 4, 1, tzinfo=UTC)
_SPAN_SECONDS = 30 * 24 * 3600

_PAGES = (
    ("/", "Home | Example Store", "Home"),
    ("/collections/shoes", "Shoes | Example Store", "Collection"),
    ("/products/trail-runner-2", "Trail Runner 2 | Example Store", "Product"),
    ("/cart", "Your cart | Example Store", "Cart"),
    ("/blog/care-for-wool", "How to care for wool | Example Store", "Article"),
)
_CAMPAIGNS = (
    {"name": "spring_sale", "source": "newsletter", "medium": "email"},
    {"name": "brand", "source": "google", "medium": "cpc", "term": "trail shoes"},
    {"name": "ambassadors", "source": "instagram", "medium": "social"},
)
_CATEGORIES = ("shoes", "socks", "jackets", "bags", "hats")
_BRANDS = ("Northwind", "Contoso", "Fabrikam")
_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


@dataclass
class Expected:
    """Totals the folded profiles must show."""

    events: int = 0
    customers: int = 0
    orders: int = 0
    page_views: int = 0
    identifies: int = 0
    net_revenue: Decimal = Decimal(0)
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.events += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


@dataclass(frozen=True)
class Traffic:
    """Raw Segment events in send order, with the totals they must fold to."""

    events: list[dict[str, Any]]
    expected: Expected


def _product(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(5000)
    return {
        "product_id": f"prod-{n:05d}",
        "sku": f"SKU-{n:05d}-{n % 4}",
        "category": _CATEGORIES[n % len(_CATEGORIES)],
        "name": f"{_BRANDS[n % len(_BRANDS)]} item {n}",
        "brand": _BRANDS[n % len(_BRANDS)],
        "variant": ("S", "M", "L", "XL")[n % 4],
        "price": (1990 + (n * 731) % 18000) / 100,
        "quantity": 1 + n % 3,
        "url": f"https://shop.example.com/products/prod-{n:05d}",
        "image_url": f"https://cdn.example.com/img/prod-{n:05d}.jpg",
    }


def _context(rng: random.Random, page: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "library": {"name": "analytics.js", "version": "next-1.70.0"},
        "page": _page_properties(page),
        "userAgent": _USER_AGENT,
        "ip": f"203.0.113.{rng.randrange(1, 251)}",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "campaign": rng.choice(_CAMPAIGNS),
    }


def _page_properties(page: tuple[str, str, str]) -> dict[str, Any]:
    path, title, _ = page
    return {
        "path": path,
        "referrer": "https://www.google.com/",
        "search": "",
        "title": title,
        "url": f"https://shop.example.com{path}",
    }


class _Shopper:
    """One person's devices and identity, producing events in time order."""

    def __init__(self, index: int, rng: random.Random, run_id: str, message_prefix: str) -> None:
        self.index = index
        self.rng = rng
        self.run_id = run_id
        self.message_prefix = message_prefix
        self.user_id = f"user-{run_id}-{index:07d}"
        self.anonymous_id = f"anon-{run_id}-{index:07d}-a"
        self.signed_in = False
        self.sequence = 0

    def _envelope(self, at: datetime, page: tuple[str, str, str]) -> dict[str, Any]:
        self.sequence += 1
        body: dict[str, Any] = {
            "messageId": f"{self.message_prefix}-{self.index:07d}-{self.sequence:04d}",
            "anonymousId": self.anonymous_id,
            "timestamp": at.isoformat(),
            "context": _context(self.rng, page),
            "integrations": {},
        }
        if self.signed_in:
            body["userId"] = self.user_id
        return body

    def page(self, at: datetime) -> dict[str, Any]:
        page = self.rng.choice(_PAGES)
        return self._envelope(at, page) | {
            "type": "page",
            "name": page[2],
            "properties": _page_properties(page),
        }

    def track(self, at: datetime, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self._envelope(at, _PAGES[2]) | {
            "type": "track",
            "event": name,
            "properties": properties,
        }

    def identify(self, at: datetime) -> dict[str, Any]:
        self.signed_in = True
        return self._envelope(at, _PAGES[0]) | {
            "type": "identify",
            "userId": self.user_id,
            "traits": {
                "email": f"{self.user_id}@shop.example",
                "first_name": "Alex",
                "plan": self.rng.choice(("free", "plus")),
                "accepts_marketing": self.rng.random() < 0.6,
            },
        }

    def new_device(self) -> None:
        """Back on another device: a fresh anonymous id, signed out until they identify."""
        self.anonymous_id = f"anon-{self.run_id}-{self.index:07d}-{self.sequence}"
        self.signed_in = False


def generate(
    events: int, customers: int, *, seed: int = 7, run_id: str = "b", message_prefix: str = "m"
) -> Traffic:
    """`events` raw events over `customers` shoppers (at least 3 each).

    Shoppers are named by `run_id`, message ids by `message_prefix`: traffic with the same
    run_id and another prefix is more activity of the same people.
    """
    rng = random.Random(seed)
    expected = Expected(customers=customers)
    per_shopper = max(3, events // customers)
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    order_number = 0
    for index in range(customers):
        shopper = _Shopper(index, rng, run_id, message_prefix)
        at = _START + timedelta(seconds=rng.randrange(_SPAN_SECONDS))
        budget = per_shopper + (1 if index < events - per_shopper * customers else 0)
        # Two in three shoppers sign in at some point; one in five of those on a second device.
        identify_at = rng.randrange(1, budget) if rng.random() < 2 / 3 else None
        second_device_at = (
            rng.randrange(identify_at + 1, budget)
            if identify_at is not None and identify_at + 2 < budget and rng.random() < 0.2
            else None
        )
        for step in range(budget):
            at += timedelta(seconds=rng.randrange(5, 600))
            if step == second_device_at:
                shopper.new_device()
            if step == identify_at or (step == second_device_at and identify_at is not None):
                event, kind = shopper.identify(at), "identify"
                expected.identifies += 1
            else:
                roll = rng.random()
                if roll < 0.45:
                    event, kind = shopper.page(at), "page"
                    expected.page_views += 1
                elif roll < 0.70:
                    properties = _product(rng) | {"currency": "GBP"}
                    event, kind = shopper.track(at, "Product Viewed", properties), "product_viewed"
                elif roll < 0.88:
                    properties = _product(rng) | {"cart_id": f"cart-{run_id}-{index}"}
                    event, kind = shopper.track(at, "Product Added", properties), "product_added"
                else:
                    order_number += 1
                    event, revenue = _order(shopper, at, rng, f"order-{run_id}-{order_number:08d}")
                    kind = "order_completed"
                    expected.orders += 1
                    expected.net_revenue += revenue
            expected.count(kind)
            timed.append((at, len(timed), event))
    timed.sort(key=lambda item: (item[0], item[1]))
    return Traffic([event for _, _, event in timed], expected)


def _order(
    shopper: _Shopper, at: datetime, rng: random.Random, order_id: str
) -> tuple[dict[str, Any], Decimal]:
    products = [_product(rng) for _ in range(rng.choice((2, 3)))]
    subtotal = sum(Decimal(str(p["price"])) * p["quantity"] for p in products)
    properties = {
        "order_id": order_id,
        "checkout_id": f"chk-{order_id}",
        "affiliation": "Example Store",
        "subtotal": float(subtotal),
        "shipping": 4.95,
        "tax": float((subtotal * Decimal("0.2")).quantize(Decimal("0.01"))),
        "discount": 0.0,
        "total": float(subtotal + Decimal("4.95")),
        "revenue": float(subtotal),
        "currency": "GBP",
        "products": products,
    }
    return shopper.track(at, "Order Completed", properties), subtotal


def touchpoint(raw: dict[str, Any], received_at: datetime) -> Touchpoint:
    """The value ingest would publish for `raw`: validated and stamped."""
    return stamp(parse_event(raw), received_at=received_at, source_id=SOURCE_ID)

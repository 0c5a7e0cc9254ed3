"""A storefront's shoppers, simulated: Segment events for every chart and journey Retain has.

Shoppers arrive one after another over the simulated days (more of them lately: the shop
grows), each through one channel: direct, organic search, paid search and social with UTM
campaigns, email, a friend's referral code, or an affiliate. They browse, fill carts and
abandon some, identify themselves with an email and a consent answer (yes or no; a few later
unsubscribe), and some buy.

Buyers follow the purchase process the CLV models assume, so the predicted CLV has something
real to find: each buyer has their own purchase rate (gamma-distributed across buyers) and,
after each order, a chance to stop buying for good (beta-distributed across buyers); their
order amounts vary around a typical basket of their own (gamma). Around the orders: coupons,
refunds and cancellations, reviews, support tickets, newsletter opens and clicks, loyalty
points redeemed, and referrals of friends.

Everything is deterministic: a shopper's events come from a generator seeded with the seed and
the shopper's number alone, and their messageIds are derived from both, so the same seed gives
the same events and sending them twice is harmless (an event counts once per messageId).
"""

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.scoring.spend_csv import SpendRow

SHOP_URL = "https://shop.example"
CURRENCY = "EUR"


@dataclass(frozen=True)
class Item:
    product_id: str
    name: str
    category: str
    price: float


# Each category spans cheap to dear, so scoring has upgrades to recommend.
CATALOG: tuple[Item, ...] = tuple(
    Item(f"{category[:3]}-{n}", name, category, price)
    for category, products in {
        "shoes": [("Trail Runner", 89.0), ("City Sneaker", 64.0), ("Leather Boot", 149.0)],
        "apparel": [("Merino Tee", 39.0), ("Rain Jacket", 119.0), ("Fleece", 69.0)],
        "bags": [("Day Pack", 59.0), ("Weekender", 129.0), ("Tote", 29.0)],
        "accessories": [("Wool Socks", 12.0), ("Cap", 19.0), ("Sunglasses", 79.0)],
        "outdoor": [("Headlamp", 34.0), ("Tent", 249.0), ("Water Bottle", 18.0)],
        "home": [("Candle", 16.0), ("Throw Blanket", 74.0), ("Mug Set", 26.0)],
    }.items()
    for n, (name, price) in enumerate(products, start=1)
)
CATEGORIES = tuple(dict.fromkeys(item.category for item in CATALOG))


@dataclass(frozen=True)
class Channel:
    name: str  # as the profile classifies the visit, and as scoring's spend rows name it
    share: float  # of arriving shoppers
    conversion: float  # share of its shoppers who ever order
    campaigns: tuple[str, ...] = ()
    cost_per_visitor: float = 0.0  # marketing spend per shopper it brings (EUR)


CHANNELS: tuple[Channel, ...] = (
    Channel("direct", 0.17, 0.35),
    Channel("search", 0.21, 0.30),
    Channel("paid_search", 0.17, 0.32, ("brand", "spring-sale", "running-shoes"), 12.0),
    Channel("social", 0.14, 0.18, ("summer-lookbook", "influencer"), 7.0),
    Channel("email", 0.08, 0.40, ("newsletter", "back-in-stock"), 1.5),
    Channel("referral", 0.11, 0.45, ("refer-a-friend",)),
    Channel("affiliate", 0.12, 0.28, ("partners",), 6.0),
)
AFFILIATES = ("dealfinder", "styleblog", "cashbackworld")
SEARCH_ENGINES = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")
SOCIAL_SOURCES = ("instagram", "facebook", "tiktok")
TIMEZONES = ("Europe/Berlin", "Europe/Paris", "Europe/London", "America/New_York")
FIRST_NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai")
LAST_NAMES = ("Ng", "Berg", "Costa", "Diaz", "Ek", "Fox", "Gray", "Holm", "Ito", "Jansen")

# The purchase process (days): rate ~ gamma(shape, scale), dropout after an order ~ beta(a, b),
# a buyer's typical basket ~ gamma(shape, scale) EUR, each order's amount ~ gamma around it.
PURCHASE_RATE = (0.9, 1 / 25)
DROPOUT = (1.2, 4.0)
TYPICAL_BASKET = (5.0, 14.0)
ORDER_SPREAD = 6.0


@dataclass(frozen=True)
class Shape:
    """What to simulate: `shoppers` arriving over the `days` before `end`, from `seed`."""

    seed: int
    shoppers: int
    days: int
    end: datetime  # aware; nothing is simulated after it

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(frozen=True)
class Arrival:
    """The first draws of a shopper's generator: who they are and how they came."""

    index: int
    user_id: str
    anonymous_id: str
    channel: Channel
    at: datetime
    buys: bool


def user_id_of(seed: int, index: int) -> str:
    return f"demo-{seed}-{index:06d}"


def _rng(seed: int, *parts: object) -> random.Random:
    # Seeded with a string: stable across runs and Python versions (not hash()-based).
    return random.Random(":".join(str(part) for part in (seed, *parts)))  # noqa: S311


def arrival(shape: Shape, index: int) -> tuple[Arrival, random.Random]:
    """Shopper `index` and the generator that goes on to simulate them."""
    rng = _rng(shape.seed, index)
    channel = rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0]
    # Arrivals in index order, denser towards the end: position ~ sqrt of the shopper's rank.
    position = ((index + rng.random()) / max(shape.shoppers, 1)) ** 0.5
    at = shape.start + timedelta(days=shape.days * position)
    anonymous_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    buys = rng.random() < channel.conversion
    return Arrival(index, user_id_of(shape.seed, index), anonymous_id, channel, at, buys), rng


def shopper_events(shape: Shape, index: int) -> list[dict[str, Any]]:
    """Everything shopper `index` does before `shape.end`, in time order."""
    came, rng = arrival(shape, index)
    shopper = _Shopper(shape, came, rng)
    shopper.live()
    events = sorted(shopper.events, key=lambda event: event["timestamp"])
    return [event for event in events if event["timestamp"] <= _iso(shape.end)]


def history(shape: Shape) -> Iterator[dict[str, Any]]:
    """Every shopper's events, shopper after shopper."""
    for index in range(shape.shoppers):
        yield from shopper_events(shape, index)


def live_session(shape: Shape, run: str, number: int, now: datetime) -> list[dict[str, Any]]:
    """Session `number` of live run `run`, ending `now`: a new shopper arriving, or a known one
    coming back to buy again. Each run names its own events, so a second run adds to the first."""
    rng = _rng(shape.seed, "live", run, number)
    if shape.shoppers and rng.random() < 0.3:
        came, _ = arrival(shape, rng.randrange(shape.shoppers))
        shopper = _Shopper(shape, came, rng, prefix=f"live-{run}-{number}")
        shopper.identified = True
        shopper.session(now - timedelta(minutes=5), first=False, buy=rng.random() < 0.6)
    else:
        channel = rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0]
        came = Arrival(
            index=shape.shoppers + number,
            user_id=f"{user_id_of(shape.seed, shape.shoppers + number)}-{run}",
            anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            channel=channel,
            at=now,
            buys=rng.random() < channel.conversion,
        )
        shopper = _Shopper(shape, came, rng, prefix=f"live-{run}-{number}")
        shopper.session(now - timedelta(minutes=5), first=True, buy=came.buys)
    span = now - timedelta(minutes=5)
    return [
        event | {"timestamp": _iso(min(now, max(span, _parse(event["timestamp"]))))}
        for event in sorted(shopper.events, key=lambda event: event["timestamp"])
    ]


def spend_plan(shape: Shape) -> list[SpendRow]:
    """Marketing spend per paid channel and month: what the shoppers it brought cost."""
    visitors: Counter[tuple[str, str]] = Counter()
    cost = {channel.name: channel.cost_per_visitor for channel in CHANNELS}
    for index in range(shape.shoppers):
        came, _ = arrival(shape, index)
        if cost[came.channel.name]:
            visitors[came.channel.name, f"{came.at:%Y-%m}"] += 1
    return [
        SpendRow(name, month, Decimal(str(round(count * cost[name], 2))), CURRENCY, None)
        for (name, month), count in sorted(visitors.items())
    ]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class _Shopper:
    shape: Shape
    came: Arrival
    rng: random.Random
    prefix: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    identified: bool = False
    opted_in: bool = False
    orders: int = 0

    def __post_init__(self) -> None:
        rng = self.rng
        self.favourite = rng.choice(CATEGORIES)
        self.timezone = rng.choice(TIMEZONES)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        self.traits: dict[str, Any] = {
            "email": f"{first}.{last}.{self.came.index}@example.com".lower(),
            "first_name": first,
            "last_name": last,
        }
        self.rate = rng.gammavariate(*PURCHASE_RATE)
        self.dropout = rng.betavariate(*DROPOUT)
        self.basket = rng.gammavariate(*TYPICAL_BASKET)
        self.campaign = rng.choice(self.came.channel.campaigns or ("",))
        self.affiliate = rng.choice(AFFILIATES) if self.came.channel.name == "affiliate" else None
        self.referrer = self._referrer() if self.came.channel.name == "referral" else None

    # --- the whole life --------------------------------------------------------------------

    def live(self) -> None:
        rng, end = self.rng, self.shape.end
        at = self.came.at
        if not self.came.buys:
            for visit in range(rng.choice((1, 1, 2, 3))):
                self.session(at, first=visit == 0, buy=False)
                at += timedelta(days=rng.expovariate(1 / 6))
                if at > end:
                    break
            return
        # A buyer: the first order in the first visit, or in a later one within days.
        if rng.random() < 0.3:
            self.session(at, first=True, buy=False)
            at += timedelta(days=rng.expovariate(1 / 4))
            self.session(at, first=False, buy=True)
        else:
            self.session(at, first=True, buy=True)
        while at <= end and rng.random() >= self.dropout:
            at += timedelta(days=rng.expovariate(self.rate))
            if at <= end:
                if rng.random() < 0.2:  # a cart left before coming back to buy
                    self.session(at - timedelta(days=rng.uniform(0.5, 3)), first=False, buy=False)
                self.session(at, first=False, buy=True)
        self._newsletters()
        if self.orders >= 3 and rng.random() < 0.35:
            self._track(
                at - timedelta(hours=1),
                "Loyalty Points Redeemed",
                {"points": rng.choice((100, 200, 250, 500))},
            )

    # --- one visit ---------------------------------------------------------------------------

    def session(self, at: datetime, *, first: bool, buy: bool) -> None:
        """A visit: a page, products viewed, perhaps a cart, perhaps an order."""
        rng = self.rng
        clock = _Clock(at, rng)
        context = self._landing_context() if first else self._return_context()
        self._page(clock.tick(), context)
        items = self._pick_items()
        for item in items + rng.sample(CATALOG, rng.choice((0, 1, 2))):
            self._track(clock.tick(), "Product Viewed", _product(item) | {"currency": CURRENCY})
        wants_cart = buy or rng.random() < 0.45
        if not wants_cart:
            return
        cart_id = f"cart-{self._id_part()}-{len(self.events)}"
        for item in items:
            self._track(clock.tick(), "Product Added", _product(item) | {"cart_id": cart_id})
        self._track(clock.tick(), "Cart Viewed", {"cart_id": cart_id, "products": _lines(items)})
        if not buy and not self.identified and rng.random() < 0.5:
            self._identify(clock.tick())  # a newsletter sign-up: an abandoned cart with an email
        if not buy:
            return
        if not self.identified:
            self._identify(clock.tick())
        self._order(clock, cart_id, items)

    def _order(self, clock: "_Clock", cart_id: str, items: list[Item]) -> None:
        rng = self.rng
        self.orders += 1
        order_id = f"ord-{self._id_part()}-{self.orders}"
        lines = _lines(items)
        subtotal = round(sum(line["price"] * line["quantity"] for line in lines), 2)
        discount = 0.0
        coupon = None
        if rng.random() < 0.12:
            coupon, discount = "WELCOME10", round(subtotal * 0.1, 2)
            self._track(
                clock.tick(),
                "Coupon Applied",
                {"cart_id": cart_id, "coupon_id": coupon, "discount": discount},
            )
        shipping = 0.0 if subtotal >= 50 else 4.95
        order: dict[str, Any] = {
            "order_id": order_id,
            "checkout_id": cart_id,
            "currency": CURRENCY,
            "products": lines,
            "subtotal": subtotal,
            "discount": discount,
            "shipping": shipping,
            "revenue": round(subtotal - discount, 2),
            "total": round(subtotal - discount + shipping, 2),
        }
        if coupon:
            order["coupon"] = coupon
        if self.affiliate and self.orders == 1:
            order["affiliation"] = self.affiliate
        self._track(clock.tick(), "Checkout Started", order | {"value": order["total"]})
        placed = clock.tick()
        self._track(placed, "Order Completed", order)
        self._after_order(placed, order_id, items)

    def _after_order(self, placed: datetime, order_id: str, items: list[Item]) -> None:
        rng = self.rng
        if self.orders == 1 and self.referrer:
            self._track(
                placed + timedelta(seconds=1),
                "Referral Code Used",
                {"referral_code": f"REF-{self.referrer}", "referrer_id": self.referrer},
                order_id=order_id,
            )
        roll = rng.random()
        if roll < 0.01:
            self._track(placed + timedelta(hours=2), "Order Cancelled", {"order_id": order_id})
            return
        if roll < 0.05:
            when = placed + timedelta(days=rng.uniform(3, 20))
            self._track(when, "Order Refunded", {"order_id": order_id, "currency": CURRENCY})
            return
        if rng.random() < 0.18:
            item = rng.choice(items)
            self._track(
                placed + timedelta(days=rng.uniform(5, 15)),
                "Review Submitted",
                {
                    "review_id": f"rev-{order_id}",
                    "product_id": item.product_id,
                    "order_id": order_id,
                    "rating": rng.choices((5, 4, 3, 2, 1), weights=(45, 30, 12, 8, 5))[0],
                    "review_body": "Arrived quickly." if rng.random() < 0.5 else "As described.",
                },
            )
        if rng.random() < 0.06:
            ticket = f"tkt-{order_id}"
            opened = placed + timedelta(days=rng.uniform(1, 10))
            self._track(
                opened,
                "Support Ticket Opened",
                {
                    "ticket_id": ticket,
                    "subject": rng.choice(("Where is my order?", "Wrong size", "Damaged item")),
                    "channel": rng.choice(("email", "chat", "phone")),
                    "priority": "normal",
                },
            )
            self._track(
                opened + timedelta(days=rng.uniform(0.2, 3)),
                "Support Ticket Resolved",
                {"ticket_id": ticket, "resolution": "solved", "satisfaction": rng.randint(2, 5)},
            )

    # --- identity, consent, email ----------------------------------------------------------

    def _identify(self, at: datetime) -> None:
        rng = self.rng
        self.identified = True
        self.opted_in = rng.random() < 0.6
        traits = self.traits | {"email_marketing_consent": self.opted_in}
        self.events.append(
            self._base("identify", at) | {"traits": traits, "anonymousId": self.came.anonymous_id}
        )
        signed_up: dict[str, Any] = {"type": self.came.channel.name, "email": traits["email"]}
        signed_up |= {"first_name": traits["first_name"], "last_name": traits["last_name"]}
        if self.referrer:
            signed_up["referral_code"] = f"REF-{self.referrer}"
        self._track(at + timedelta(milliseconds=200), "Signed Up", signed_up)
        if self.opted_in and rng.random() < 0.08:
            later = at + timedelta(days=rng.uniform(10, 120))
            self._track(later, "Unsubscribed", {"list_id": "newsletter", "list_name": "News"})

    def _newsletters(self) -> None:
        """Opens and clicks of the monthly newsletter, for shoppers who said yes to it."""
        if not self.opted_in:
            return
        rng = self.rng
        month = self.came.at.replace(day=1, hour=9, minute=0, second=0, microsecond=0)
        while month < self.shape.end:
            month = (month + timedelta(days=32)).replace(day=1)
            if rng.random() < 0.35:
                email_id = f"newsletter-{month:%Y-%m}"
                props = {"email_id": email_id, "campaign_name": "Monthly newsletter"}
                sent = month + timedelta(hours=rng.uniform(0, 48))
                self._track(sent, "Email Opened", props)
                if rng.random() < 0.3:
                    url = f"{SHOP_URL}/new?utm_source=newsletter&utm_medium=email"
                    self._track(
                        sent + timedelta(minutes=2), "Email Link Clicked", props | {"link_url": url}
                    )

    # --- where a visit comes from --------------------------------------------------------------

    def _landing_context(self) -> dict[str, Any]:
        rng, channel = self.rng, self.came.channel
        context: dict[str, Any] = {"timezone": self.timezone, "locale": "en-GB"}
        utm: dict[str, str] | None = None
        page: dict[str, Any] = {"url": f"{SHOP_URL}/", "path": "/", "title": "Shop"}
        if channel.name == "search":
            page["referrer"] = rng.choice(SEARCH_ENGINES)
        elif channel.name == "paid_search":
            utm = {"source": "google", "medium": "cpc", "name": self.campaign}
        elif channel.name == "social":
            utm = {"source": rng.choice(SOCIAL_SOURCES), "medium": "social", "name": self.campaign}
        elif channel.name == "email":
            utm = {"source": "newsletter", "medium": "email", "name": self.campaign}
        elif channel.name == "referral":
            utm = {"source": "friend", "medium": "referral", "name": self.campaign}
        elif channel.name == "affiliate":
            utm = {"source": self.affiliate or "", "medium": "affiliate", "name": self.campaign}
        if utm:
            query = "&".join(f"utm_{'campaign' if k == 'name' else k}={v}" for k, v in utm.items())
            page["url"] = f"{SHOP_URL}/?{query}"
            context["campaign"] = utm
        context["page"] = page
        return context

    def _return_context(self) -> dict[str, Any]:
        page = {"url": f"{SHOP_URL}/", "path": "/", "title": "Shop"}
        if self.opted_in and self.rng.random() < 0.3:
            page["url"] = f"{SHOP_URL}/?utm_source=newsletter&utm_medium=email&utm_campaign=news"
        return {"timezone": self.timezone, "locale": "en-GB", "page": page}

    def _referrer(self) -> str | None:
        """An earlier shopper who bought, whose code this one uses."""
        for _ in range(5):
            if self.came.index == 0:
                return None
            candidate, _ = arrival(self.shape, self.rng.randrange(self.came.index))
            if candidate.buys:
                return candidate.user_id
        return None

    # --- events --------------------------------------------------------------------------------

    def _pick_items(self) -> list[Item]:
        rng = self.rng
        target = rng.gammavariate(ORDER_SPREAD, self.basket / ORDER_SPREAD)
        picked: list[Item] = []
        while not picked or (sum(i.price for i in picked) < target * 0.8 and len(picked) < 5):
            category = self.favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
            picked.append(rng.choice([item for item in CATALOG if item.category == category]))
        return picked

    def _page(self, at: datetime, context: dict[str, Any]) -> None:
        page = context["page"]
        properties = {"url": page["url"], "path": page["path"], "title": page["title"]}
        if "referrer" in page:
            properties["referrer"] = page["referrer"]
        self.events.append(
            self._base("page", at) | {"name": "Home", "properties": properties, "context": context}
        )

    def _track(self, at: datetime, name: str, properties: dict[str, Any], **extra: Any) -> None:
        self.events.append(
            self._base("track", at) | {"event": name, "properties": properties | extra}
        )

    def _base(self, kind: str, at: datetime) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": kind,
            "messageId": f"{self.came.user_id}-{self.prefix}-{len(self.events)}".replace("--", "-"),
            "timestamp": _iso(at),
            "anonymousId": self.came.anonymous_id,
            "context": {"timezone": self.timezone},
        }
        if self.identified:
            event["userId"] = self.came.user_id
        return event

    def _id_part(self) -> str:
        return self.came.user_id.removeprefix("demo-") + (f"-{self.prefix}" if self.prefix else "")


@dataclass
class _Clock:
    """Time within one visit: each step a few seconds to a minute after the last."""

    at: datetime
    rng: random.Random

    def tick(self) -> datetime:
        self.at += timedelta(seconds=self.rng.uniform(3, 60))
        return self.at


def _product(item: Item) -> dict[str, Any]:
    return {
        "product_id": item.product_id,
        "name": item.name,
        "category": item.category,
        "price": item.price,
    }


def _lines(items: list[Item]) -> list[dict[str, Any]]:
    counts = Counter(items)
    return [_product(item) | {"quantity": count} for item, count in counts.items()]

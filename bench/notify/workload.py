"""What the notify benchmark feeds notify: the synthetic shop's customers (their profiles.v1
snapshots, bench/scoring/shop.py), one cart change each on lifecycle.v1, and the shipped
journeys with the abandoned cart's first wait shortened.

Which customers get a reminder follows from the journey: abandoned_cart is marketing, so its
reminder goes to a customer who opted in to marketing email and has an address; the others'
reminders are suppressed (`no_consent`). The second reminder waits 24 hours, beyond any run.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.scoring.shop import PRODUCTS, Customer, snapshot
from schemas.journey_v1 import parse_duration
from schemas.topics._common import CartItem
from schemas.topics.lifecycle_v1 import CartActivity
from schemas.topics.profiles_v1 import ProfileSnapshot
from services.notify import journeys
from services.notify.domain.catalog import SUFFIXES, parse_journey
from services.runtime.kafka import create_producer
from services.runtime.settings import ServiceSettings

JOURNEY = "abandoned_cart"
REMINDER = "cart_reminder_1"
_SHIPPED_FIRST_WAIT = "- wait: {duration: 4h}"


def shortened_journeys(target: Path, first_wait: timedelta) -> Path:
    """The shipped journeys copied into `target`, with the abandoned cart's first wait (4h)
    set to `first_wait`: the only change, checked by comparing the parsed journeys."""
    target.mkdir(parents=True, exist_ok=True)
    for path in journeys.DIRECTORY.iterdir():
        if path.suffix.lower() in SUFFIXES:
            shutil.copy(path, target / path.name)
    name = f"{JOURNEY}.yaml"
    shipped = (journeys.DIRECTORY / name).read_text()
    seconds = int(first_wait.total_seconds())
    shortened = shipped.replace(_SHIPPED_FIRST_WAIT, f"- wait: {{duration: {seconds}s}}", 1)
    before, after = (parse_journey(text, name).model_dump() for text in (shipped, shortened))
    [wait, *rest] = after.pop("steps")
    same = before.pop("steps")[1:] == tuple(rest) and before == after
    if shortened == shipped or not same or parse_duration(wait["wait"]["duration"]) != first_wait:
        raise RuntimeError(f"{name} no longer starts with a 4h wait; update the benchmark")
    (target / name).write_text(shortened)
    return target


def profile(customer: Customer, now: datetime) -> ProfileSnapshot:
    return snapshot(customer, 1, now)


def gets_reminder(profile: ProfileSnapshot) -> bool:
    """Whether the journey (marketing) sends this customer its reminder."""
    return bool(profile.email) and profile.consent.email_marketing == "opted_in"


def cart_change(customer: Customer, at: datetime) -> CartActivity:
    """Two products in the cart, changed at `at`: the abandoned cart's trigger."""
    bought = [PRODUCTS[(customer.number + n * 37) % len(PRODUCTS)] for n in range(2)]
    items = [
        CartItem(product_id=sku, name=f"Product {sku}", category=category, price=Decimal("24.95"))
        for sku, category in bought
    ]
    return CartActivity(
        type="cart_activity",
        event_id=f"cart:{customer.customer_id}:{at.timestamp():.3f}",
        customer_id=customer.customer_id,
        occurred_at=at,
        cart_id=f"cart-{customer.number}",
        items=items,
        items_count=len(items),
        value=Decimal("49.90"),
        currency="EUR",
        last_activity_at=at,
    )


def keyed(models: Iterable[ProfileSnapshot | CartActivity]) -> list[tuple[bytes, bytes]]:
    """Kafka records keyed by customer id, as profile publishes them."""
    return [(m.customer_id.encode(), m.model_dump_json().encode()) for m in models]


async def produce(
    settings: ServiceSettings, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> None:
    """Produce the records (acks=all, idempotent, as the services do) and wait for every ack."""
    producer = create_producer(settings, "retain-bench")
    await producer.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, key=key, value=value))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()

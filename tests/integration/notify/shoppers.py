"""What the notify integration tests send and read: a consenting shopper, their cart and
order, and notify's ledger."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import RunningService


def daytime_zone(now: datetime) -> str:
    """An IANA zone where it is early afternoon now: outside quiet hours whenever tests run."""
    hours = (13 - now.hour + 12) % 24 - 12  # the offset from UTC, -12..+11
    if hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # Etc/GMT-3 is UTC+3


def shopper(user: str, now: datetime, days_ago: float = 3) -> dict[str, Any]:
    """A known customer who opted in to marketing email (3 days ago: history for the welcome
    journey, unless said otherwise)."""
    return {
        "type": "identify",
        "userId": user,
        "messageId": f"{user}-identify",
        "timestamp": (now - timedelta(days=days_ago)).isoformat(),
        "traits": {"email": f"{user}@shop.example", "first_name": "Ada", "accepts_marketing": True},
        "context": {"timezone": daytime_zone(now)},
    }


def cart_change(user: str, at: datetime, n: int = 1) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Added",
        "messageId": f"{user}-added-{n}",
        "timestamp": at.isoformat(),
        "properties": {"cart_id": f"{user}-cart", "product_id": "tent-2p", "price": 199.0},
    }


def completed(user: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"{user}-order",
        "timestamp": at.isoformat(),
        "properties": {
            "order_id": f"{user}-o1",
            "revenue": 199.0,
            "currency": "EUR",
            "products": [{"product_id": "tent-2p", "price": 199.0, "quantity": 1}],
        },
    }


async def notifications_of(database: AsyncEngine, customer_id: str) -> list[dict[str, Any]]:
    async with database.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT journey, template, status, reason FROM notify.notifications "
                "WHERE customer_id = :id ORDER BY created_at"
            ),
            {"id": customer_id},
        )
        return [dict(r._mapping) for r in rows]


def local_link(url: str, service: RunningService) -> str:
    """Links point at RETAIN_PUBLIC_URL (the default port); the suite's notify listens on
    another."""
    path = url.split("/", 3)[3]
    return f"{service.url}/{path}"

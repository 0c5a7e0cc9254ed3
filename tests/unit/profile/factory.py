"""Touchpoints for the profile tests, built through the same validation ingest applies."""

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from schemas.parse import parse_event
from schemas.topics.touchpoints_v1 import Touchpoint

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_message_ids = count(1)  # unique across builders: a shared id would be one event


def at(hours: float = 0) -> datetime:
    return T0 + timedelta(hours=hours)


def touchpoint(raw: dict[str, Any], *, when: datetime, message_id: str) -> Touchpoint:
    event = parse_event({**raw, "messageId": message_id})
    return Touchpoint(
        message_id=message_id,
        customer_key=event.customer_key,
        source_id="src_1",
        received_at=when,
        timestamp=when,
        event=event,
    )


class Events:
    """One customer's touchpoints, each with a fresh messageId unless one is given."""

    def __init__(self, user_id: str | None = "u1", anonymous_id: str | None = "a1") -> None:
        self.ids: dict[str, str] = {}
        if user_id:
            self.ids["userId"] = user_id
        if anonymous_id:
            self.ids["anonymousId"] = anonymous_id

    def _make(self, raw: dict[str, Any], hours: float, message_id: str | None) -> Touchpoint:
        message_id = message_id or f"m{next(_message_ids)}"
        return touchpoint({**self.ids, **raw}, when=at(hours), message_id=message_id)

    def track(
        self,
        name: str,
        properties: dict[str, Any] | None = None,
        *,
        hours: float = 0,
        message_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Touchpoint:
        raw: dict[str, Any] = {"type": "track", "event": name, "properties": properties or {}}
        if context:
            raw["context"] = context
        return self._make(raw, hours, message_id)

    def identify(
        self, traits: dict[str, Any], *, hours: float = 0, message_id: str | None = None
    ) -> Touchpoint:
        return self._make({"type": "identify", "traits": traits}, hours, message_id)

    def page(
        self,
        url: str = "https://shop.example/",
        *,
        referrer: str | None = None,
        campaign: dict[str, str] | None = None,
        hours: float = 0,
        message_id: str | None = None,
    ) -> Touchpoint:
        context: dict[str, Any] = {"page": {"url": url, "referrer": referrer}}
        if campaign:
            context["campaign"] = campaign
        return self._make({"type": "page", "context": context}, hours, message_id)

    def order(
        self,
        order_id: str,
        revenue: float,
        *,
        currency: str = "USD",
        products: list[dict[str, Any]] | None = None,
        hours: float = 0,
        message_id: str | None = None,
    ) -> Touchpoint:
        properties = {
            "order_id": order_id,
            "revenue": revenue,
            "currency": currency,
            "products": products or [],
        }
        return self.track("Order Completed", properties, hours=hours, message_id=message_id)

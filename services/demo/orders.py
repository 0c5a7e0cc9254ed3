"""Past orders from a file, as Order Completed events with their original dates.

Two formats:
- CDNOW_master (the transactions of the CDNOW panel the BG/NBD literature fits, as the
  lifetimes package ships it): whitespace-separated customer id, date (YYYYMMDD), number of
  CDs, dollar value, after one header line;
- an orders CSV a shop exports: a header row naming `customer_id`, `order_id`, `date`
  (YYYY-MM-DD, or an ISO date-time; UTC when it has no zone) and `amount`, and optionally
  `currency` (else the default given) and `channel` (how the customer was acquired, one of
  scoring's channels).

Every row is checked before any is sent, and every problem reported with its line, so a file
goes in whole or not at all. Each order's messageId derives from the file's own ids, so a
replay sent twice lands once.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas._types import MAX_MONEY
from services.scoring.spend_csv import CHANNELS

CDNOW_PREFIX = "cdnow-"
REQUIRED = ("customer_id", "order_id", "date", "amount")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MAX_PROBLEMS = 20

# How a replayed order names its customer's channel: UTM tags the profile classifies back to
# that channel (tests/unit/demo/test_orders.py checks each round trip).
CHANNEL_UTM: dict[str, dict[str, str]] = {
    "direct": {},
    "search": {"source": "google", "medium": "organic"},
    "paid_search": {"source": "google", "medium": "cpc"},
    "social": {"source": "facebook", "medium": "social"},
    "email": {"source": "newsletter", "medium": "email"},
    "referral": {"source": "friend", "medium": "referral"},
    "affiliate": {"source": "affiliate", "medium": "affiliate"},
    "other": {"source": "import", "medium": "other"},
}


@dataclass(frozen=True)
class PastOrder:
    customer_id: str
    order_id: str
    at: datetime  # aware, UTC
    amount: Decimal
    currency: str
    quantity: int = 1
    channel: str | None = None


class OrderFileError(ValueError):
    """The file cannot be replayed; the message lists the problems, by line."""


def cdnow_orders(text: str) -> list[PastOrder]:
    """The CDNOW_master transactions; each one an order (a customer may buy twice a day)."""
    orders: list[PastOrder] = []
    problems: list[str] = []
    lines = text.splitlines()
    if not lines or lines[0].split()[:2] != ["customer_id", "date"]:
        raise OrderFileError("line 1: not a CDNOW_master file (its header names customer_id, date)")
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        try:
            customer, day, cds, dollars = fields
            at = datetime.strptime(day, "%Y%m%d").replace(hour=12, tzinfo=UTC)
            amount = _amount(dollars)
            quantity = int(cds)
        except ValueError:
            problems.append(f"line {number}: expected customer id, YYYYMMDD, CDs, dollars")
            continue
        orders.append(
            PastOrder(
                customer_id=f"{CDNOW_PREFIX}{customer}",
                order_id=f"{CDNOW_PREFIX}{number}",
                at=at,
                amount=amount,
                currency="USD",
                quantity=quantity,
            )
        )
    _raise_if(problems)
    return orders


def csv_orders(text: str, *, default_currency: str | None = None) -> list[PastOrder]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise OrderFileError(f"line 1: missing column(s) {', '.join(missing)}")
    orders: list[PastOrder] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(reader, start=2):
        row = {key: (value or "").strip() for key, value in record.items() if key}
        found = [f"{column} is empty" for column in REQUIRED if not row.get(column)]
        currency = (row.get("currency") or default_currency or "").upper()
        if not _CURRENCY.match(currency):
            found.append(f"currency {currency!r} is not a 3-letter code (or pass --currency)")
        channel = row.get("channel") or None
        if channel is not None and channel not in CHANNELS:
            found.append(f"channel {channel!r} is not one of {sorted(CHANNELS)}")
        try:
            at = _when(row.get("date", ""))
        except ValueError:
            found.append(f"date {row.get('date')!r} is not YYYY-MM-DD or an ISO date-time")
        try:
            amount = _amount(row.get("amount", ""))
        except ValueError:
            found.append(f"amount {row.get('amount')!r} is not a number from 0 to {MAX_MONEY:,}")
        order_id = row.get("order_id", "")
        if order_id in seen:
            found.append(f"order_id {order_id!r} is already on line {seen[order_id]}")
        seen.setdefault(order_id, number)
        if found:
            problems += [f"line {number}: {problem}" for problem in found]
            continue
        orders.append(PastOrder(row["customer_id"], order_id, at, amount, currency, 1, channel))
    _raise_if(problems)
    return orders


def order_event(order: PastOrder) -> dict[str, Any]:
    """The Order Completed a storefront would have sent for the order, when it happened."""
    price = order.amount / order.quantity if order.quantity else order.amount
    event: dict[str, Any] = {
        "type": "track",
        "event": "Order Completed",
        "userId": order.customer_id,
        "messageId": f"replay-{order.order_id}",
        "timestamp": order.at.isoformat().replace("+00:00", "Z"),
        "properties": {
            "order_id": order.order_id,
            "revenue": float(order.amount),
            "currency": order.currency,
            "products": [
                {"product_id": "item", "quantity": order.quantity, "price": round(float(price), 2)}
            ],
        },
    }
    if order.channel and CHANNEL_UTM[order.channel]:  # direct: no tags, as a typed-in visit
        event["context"] = {"campaign": CHANNEL_UTM[order.channel]}
    return event


def events(orders: Iterable[PastOrder]) -> Iterable[dict[str, Any]]:
    return (order_event(order) for order in orders)


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not amount.is_finite() or not 0 <= amount <= MAX_MONEY:
        raise ValueError(text)
    return amount


def _when(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if len(text) == 10:  # a date alone: midday, so the day is the same in every zone near UTC
        at = at.replace(hour=12)
    at = at.astimezone(UTC)
    if not 1970 <= at.year < 2100:
        raise ValueError(text)
    return at


def _raise_if(problems: list[str]) -> None:
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        raise OrderFileError(shown + (f"; and {more} more" if more > 0 else ""))

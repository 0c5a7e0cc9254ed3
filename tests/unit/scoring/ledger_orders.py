"""Orders with priced lines, built as the ledger builds them from order_completed."""

from datetime import UTC, datetime
from decimal import Decimal

from schemas.topics._common import CartItem
from schemas.topics.lifecycle_v1 import OrderCompleted
from services.scoring.domain.ledger import LedgerOrder, ledger_order

AT = datetime(2026, 5, 1, tzinfo=UTC)

Line = tuple[str, str | None, str | None]  # product id, category, unit price


def order_completed(
    customer_id: str,
    order_id: str,
    *lines: Line,
    at: datetime = AT,
    currency: str | None = "EUR",
) -> OrderCompleted:
    """order_completed for one unit of each line; the revenue is their sum."""
    items = [
        CartItem(
            product_id=product, category=category, price=None if price is None else Decimal(price)
        )
        for product, category, price in lines
    ]
    return OrderCompleted(
        type="order_completed",
        event_id=f"e-{customer_id}-{order_id}",
        customer_id=customer_id,
        occurred_at=at,
        order_id=order_id,
        revenue=sum((item.price or Decimal(0) for item in items), Decimal(0)),
        currency=currency,
        items=items,
    )


def priced_order(
    *lines: Line, order_id: str = "o", at: datetime = AT, currency: str | None = "EUR"
) -> LedgerOrder:
    return ledger_order(order_completed("c", order_id, *lines, at=at, currency=currency))

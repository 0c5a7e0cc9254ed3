"""The ledger: every customer's orders as scoring keeps them, from lifecycle.v1 order_completed.

An order keeps its time, revenue and currency (for the CLV models, RFM and standing), the
categories and products it held (for standing and co-purchases), and its lines with their
categories and unit prices (for upgrades). A line is kept when it names a product (its
product_id, else its sku).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.topics.lifecycle_v1 import OrderCompleted


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order: the product, the category it was sold in and its unit price in the
    order's currency (None: not given)."""

    product_id: str
    category: str | None = None
    unit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LedgerOrder:
    """An order as scoring keeps it."""

    order_id: str
    at: datetime
    revenue: Decimal
    currency: str | None
    categories: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    lines: tuple[OrderLine, ...] = ()  # empty for orders stored before lines were kept


def ledger_order(event: OrderCompleted) -> LedgerOrder:
    lines = tuple(
        OrderLine(product, item.category, item.price)
        for item in event.items
        if (product := item.product_id or item.sku)
    )
    return LedgerOrder(
        event.order_id,
        event.occurred_at,
        event.revenue,
        event.currency,
        frozenset(item.category for item in event.items if item.category),
        frozenset(line.product_id for line in lines),
        lines,
    )

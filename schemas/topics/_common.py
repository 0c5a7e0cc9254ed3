"""Pieces shared by Retain's own topic payloads (snake_case on the wire)."""

from pydantic import BaseModel, ConfigDict

from schemas._types import Count, Money, OptionalId, Text


class TopicModel(BaseModel):
    """Base of Retain-native payloads: unknown fields are ignored so v1 can grow compatibly."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CartItem(TopicModel):
    product_id: OptionalId = None
    sku: OptionalId = None
    name: Text | None = None
    category: Text | None = None
    quantity: Count = 1
    price: Money | None = None

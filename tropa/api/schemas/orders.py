"""Orders and purchase totals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class StatusChange(BaseModel):
    """One status change of an order."""

    from_status: str | None
    to_status: str
    changed_at: datetime


class OrderPublic(BaseModel):
    """A stored order; money in integer minor units of `currency`."""

    id: str
    customer_id: str
    placed_at: datetime
    status: str
    currency: str
    total: int
    refunded: int
    items: list[dict[str, Any]]
    store: str | None
    channel: str
    attributes: dict[str, Any]
    counted: bool
    created_at: datetime
    updated_at: datetime
    status_history: list[StatusChange] = []


class OrderRecorded(OrderPublic):
    """What a PUT did: `unchanged` for a repeat of the same body."""

    outcome: Literal["created", "updated", "unchanged"]


class PurchaseTotals(BaseModel):
    """A customer's purchases in one currency; refunds already taken off."""

    currency: str
    orders_count: int
    total_spent: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None

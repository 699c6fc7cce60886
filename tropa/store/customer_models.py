"""Tables of the customers domain: cards, aliases, tags, orders, purchase totals, audit, imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(sa.JSON, nullable=False), **kwargs)


def _aware() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime)


class Card(SQLModel, table=True):
    """A loyalty card: a customer may hold several; barcode and track are unique."""

    __tablename__ = "cards"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=128)
    barcode: str = Field(unique=True, max_length=64)
    track: str | None = Field(default=None, unique=True, max_length=200)
    issued_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str = Field(default="active", max_length=16)  # active|blocked
    created_at: datetime = _aware()
    updated_at: datetime = _aware()


class CustomerAlias(SQLModel, table=True):
    """An id merged into another customer: events for it reach the survivor."""

    __tablename__ = "customer_aliases"

    alias_id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(index=True, max_length=128)
    merged_at: datetime = _aware()


class TagDefinition(SQLModel, table=True):
    """A tag as a resource: colour and description; customers keep plain names."""

    __tablename__ = "tags"

    name: str = Field(primary_key=True, max_length=100)
    colour: str | None = Field(default=None, max_length=7)
    description: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _aware()
    updated_at: datetime = _aware()


class Order(SQLModel, table=True):
    """A purchase; money in integer minor units of `currency`."""

    __tablename__ = "orders"
    __table_args__ = (
        # Counted orders by customer and time: the RF segments' aggregate reads this index
        # alone (see tropa/segments/compute.py).
        sa.Index("ix_orders_counted_customer_placed_at", "customer_id", "placed_at",
                 postgresql_where=sa.text("counted"), sqlite_where=sa.text("counted = 1")),
    )

    id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(index=True, max_length=128)
    placed_at: datetime = Field(sa_type=UtcDateTime, index=True)
    status: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    total: int = Field(sa_type=sa.BigInteger)
    refunded: int = Field(default=0, sa_type=sa.BigInteger)
    store: str | None = Field(default=None, max_length=200)
    channel: str = Field(default="offline", max_length=16)  # online|offline
    items: list[dict[str, Any]] = _json(default_factory=list)
    attributes: dict[str, Any] = _json(default_factory=dict)
    body_hash: str = Field(max_length=64)
    # Whether the order counts in the purchase totals (placed, not cancelled).
    counted: bool = False
    created_at: datetime = _aware()
    updated_at: datetime = _aware()


class OrderStatusChange(SQLModel, table=True):
    """One status change of an order, with its time."""

    __tablename__ = "order_status_changes"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=128)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    changed_at: datetime = _aware()


class PurchaseStats(SQLModel, table=True):
    """A customer's purchase totals in one currency; what segments and triggers read."""

    __tablename__ = "purchase_stats"
    __table_args__ = (
        sa.Index("ix_purchase_stats_last_purchase_at", "last_purchase_at"),
        sa.Index("ix_purchase_stats_orders_count", "orders_count"),
    )

    customer_id: str = Field(primary_key=True, max_length=128)
    currency: str = Field(primary_key=True, max_length=3)
    orders_count: int = 0
    total_spent: int = Field(default=0, sa_type=sa.BigInteger)
    first_purchase_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_purchase_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AuditEntry(SQLModel, table=True):
    """Who changed what and when; contact values are never copied here."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=128)
    entity: str = Field(max_length=16)  # customer|card|order|tag|consent
    entity_id: str = Field(max_length=200)
    action: str = Field(max_length=32)
    actor_kind: str = Field(max_length=16)  # api_key|import|journey|cli|system
    actor_id: str | None = Field(default=None, max_length=400)
    actor_name: str | None = Field(default=None, max_length=200)
    changes: dict[str, Any] = _json(default_factory=dict)
    at: datetime = _aware()


class ImportJob(SQLModel, table=True):
    """An import of customers or orders from a file, with progress and its report."""

    __tablename__ = "import_jobs"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # customers|orders
    filename: str = Field(max_length=400)
    status: str = Field(default="queued", max_length=16)  # queued|running|done|failed
    dry_run: bool = False
    rows_total: int = 0
    rows_done: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    report_path: str | None = Field(default=None, max_length=1000)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _aware()
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

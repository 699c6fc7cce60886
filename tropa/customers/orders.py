"""Purchases: record an order idempotently, its status changes and refunds, the events they
raise, and each customer's purchase totals per currency kept exact under concurrent writes.

An order counts as a purchase unless it is cancelled, awaiting payment, failed or refunded in
full; its amount is `total - refunded`. Totals are recomputed for the customer and currency
from the orders while the customer's row is locked, so two writers never lose an update.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from sqlmodel import Session, col, func, select

from tropa.clock import ensure_aware, utcnow
from tropa.customers.audit import Actor, diff, record
from tropa.customers.identifiers import CustomerNotFound, Identifier, canonical_id, find_id
from tropa.customers.locking import lock_customer
from tropa.store.customer_models import Order, OrderStatusChange, PurchaseStats
from tropa.store.models import Event

NOT_PURCHASES = frozenset({"cancelled", "awaiting_payment", "failed", "refunded"})
Status = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["paid"])]
Money = Annotated[int, Field(ge=0, le=10**15, description="Integer minor units (kopecks)")]


def _sane_year(value: datetime) -> datetime:
    if not 1900 <= value.year <= 2200:
        raise ValueError("must be between the years 1900 and 2200")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_sane_year)]
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
AttributeName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
AttributeValue = (Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")]
                  | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None)


class OrderItem(BaseModel):
    """One line of an order; `price` is per unit in minor units."""

    model_config = ConfigDict(extra="forbid")

    sku: ShortText
    name: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] | None = None
    quantity: int = Field(ge=1, le=1_000_000)
    price: Money


class OrderData(BaseModel):
    """An order as a shop sends it, without the customer."""

    model_config = ConfigDict(extra="forbid")

    placed_at: Moment
    status: Status = "placed"
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    total: Money
    refunded: Money = Field(default=0, description="Amount returned so far")
    items: list[OrderItem] = Field(default_factory=list, max_length=1000)
    store: ShortText | None = None
    channel: Literal["online", "offline"] = "offline"
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, max_length=50,
        description="Promo code, UTM tags and the like", examples=[{"utm_source": "email"}])

    @model_validator(mode="after")
    def _refund_within_total(self) -> OrderData:
        if self.refunded > self.total:
            raise ValueError("refunded is more than total")
        return self


class OrderIn(OrderData):
    """An order for PUT /v1/orders/{id}: the customer by any identifier."""

    customer: Identifier


class OrderConflict(ValueError):
    """The order exists for another customer."""


@dataclass
class Recorded:
    """What recording an order did; `events` are stored, to be routed after the commit."""

    order: Order
    outcome: Literal["created", "updated", "unchanged"]
    events: list[Event] = field(default_factory=list)


def _hash(customer_id: str, data: OrderData) -> str:
    body = {"customer_id": customer_id, **data.model_dump(mode="json", exclude={"customer"})}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def counts(status: str, total: int, refunded: int) -> bool:
    """Whether an order in this state is a purchase."""
    return status not in NOT_PURCHASES and (refunded < total or total == 0)


def order_view(order: Order) -> dict[str, Any]:
    """The order as events carry it (`event.data`)."""
    return {"order_id": order.id, "customer_id": order.customer_id,
            "placed_at": order.placed_at.isoformat(), "status": order.status,
            "currency": order.currency, "total": order.total, "refunded": order.refunded,
            "items": order.items, "store": order.store, "channel": order.channel,
            "attributes": order.attributes}


def _event(order: Order, kind: str, suffix: str, at: datetime, **extra: Any) -> Event:
    return Event(event_id=f"order:{order.id}:{suffix}", type=kind, customer_id=order.customer_id,
                 occurred_at=at, received_at=utcnow(), data={**order_view(order), **extra})


def record_order(session: Session, order_id: str, data: OrderData, *, customer_id: str,
                 actor: Actor, emit_placed: bool = True, emit: bool = True) -> Recorded:
    """Create or change an order; a repeat of the same body changes nothing.

    Takes the customer's lock first, so totals stay exact; OrderConflict if the order is
    another customer's. `emit_placed=False` when the caller's own event is the `order.placed`;
    `emit=False` raises no events at all (a shop's purchase history, imported).
    """
    if not lock_customer(session, customer_id):
        # Merged away while this request waited: the order is the survivor's.
        survivor = canonical_id(session, customer_id)
        if survivor is None or not lock_customer(session, survivor):
            raise CustomerNotFound(f"customer {customer_id!r} does not exist")
        customer_id = survivor
    digest = _hash(customer_id, data)
    order = session.get(Order, order_id, with_for_update=True)
    if order is not None and order.customer_id != customer_id:
        raise OrderConflict(f"order {order_id!r} belongs to customer {order.customer_id!r}; "
                            "merge the customers to move it")
    if order is not None and order.body_hash == digest:
        return Recorded(order, "unchanged")
    now = utcnow()
    fields = data.model_dump(mode="python", exclude={"customer"})
    fields["items"] = [i.model_dump(mode="json") for i in data.items]
    created = order is None
    before: dict[str, Any] = {}
    old_status, old_refunded, old_currency = None, 0, data.currency
    if order is None:
        order = Order(id=order_id, customer_id=customer_id, body_hash=digest, **fields)
    else:
        before = {k: getattr(order, k) for k in fields}
        old_status, old_refunded, old_currency = order.status, order.refunded, order.currency
        for name, value in fields.items():
            setattr(order, name, value)
        order.body_hash = digest
        order.updated_at = now
    order.counted = counts(order.status, order.total, order.refunded)
    session.add(order)
    session.flush()
    result = Recorded(order, "created" if created else "updated")
    if created and emit_placed:
        result.events.append(_event(order, "order.placed", "placed", order.placed_at))
    if old_status != order.status:
        change = OrderStatusChange(order_id=order.id, from_status=old_status,
                                   to_status=order.status, changed_at=now)
        session.add(change)
        session.flush()
        if not created:
            result.events.append(_event(order, "order.status_changed", f"status:{change.id}",
                                        now, **{"from": old_status, "to": order.status}))
    refund = order.refunded - old_refunded
    if order.status == "refunded" and old_status != "refunded":
        refund = max(refund, order.total - old_refunded)
    if refund > 0:
        done = session.exec(select(func.count()).select_from(Event).where(
            col(Event.event_id).startswith(f"order:{order.id}:refund:", autoescape=True))).one()
        result.events.append(_event(order, "order.refunded", f"refund:{done + 1}", now,
                                    amount=refund))
    if not emit:
        result.events.clear()
    for event in result.events:
        session.add(event)
    record(session, customer_id=customer_id, entity="order", entity_id=order_id,
           action="created" if created else "updated", actor=actor,
           changes=diff(before, {k: getattr(order, k) for k in fields}))
    refresh_totals(session, customer_id, order.currency)
    if old_currency != order.currency:
        refresh_totals(session, customer_id, old_currency)
    return result


def refresh_totals(session: Session, customer_id: str, currency: str) -> None:
    """Recompute the customer's totals in one currency from the orders (under the lock)."""
    count, total, first, last = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total - Order.refunded), 0),
               func.min(Order.placed_at), func.max(Order.placed_at))
        .where(Order.customer_id == customer_id, Order.currency == currency,
               col(Order.counted).is_(True))).one()
    stats = session.get(PurchaseStats, (customer_id, currency))
    if stats is None:
        if not count:
            return
        stats = PurchaseStats(customer_id=customer_id, currency=currency)
    stats.orders_count, stats.total_spent = int(count), int(total)
    stats.first_purchase_at, stats.last_purchase_at = _aware(first), _aware(last)
    session.add(stats)


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's MIN/MAX return the stored text
        value = datetime.fromisoformat(value)
    return ensure_aware(value)


def resolve_customer(session: Session, identifier: Identifier) -> str:
    """The customer id for an order's identifier, or CustomerNotFound."""
    customer_id = find_id(session, identifier)
    if customer_id is None:
        raise CustomerNotFound(f"no customer with that {identifier.type}; create the customer "
                               "first or send another identifier")
    return customer_id


def totals_of(session: Session, customer_id: str) -> list[PurchaseStats]:
    """A customer's purchase totals, one per currency."""
    return list(session.exec(select(PurchaseStats).where(PurchaseStats.customer_id == customer_id)
                             .order_by(col(PurchaseStats.currency))))


def status_history(session: Session, order_id: str) -> list[OrderStatusChange]:
    """The order's status changes, oldest first."""
    return list(session.exec(select(OrderStatusChange)
                             .where(OrderStatusChange.order_id == order_id)
                             .order_by(col(OrderStatusChange.id))))


def unrouted_events(session: Session, event_ids: list[str]) -> list[Event]:
    """Of these stored order events, those not routed yet (a crash after the commit)."""
    if not event_ids:
        return []
    return list(session.exec(select(Event).where(col(Event.event_id).in_(event_ids),
                                                 col(Event.routed_at).is_(None))))


def order_event_ids(session: Session, order_id: str) -> list[str]:
    """Ids of every event an order raised."""
    return list(session.exec(select(Event.event_id).where(
        col(Event.event_id).startswith(f"order:{order_id}:", autoescape=True))))


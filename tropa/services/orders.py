"""Recording orders from the API, from `order.placed` events and from imports, then routing the
events they raise (`order.placed`, `order.status_changed`, `order.refunded`) to journeys."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tropa.customers import orders
from tropa.customers.audit import Actor
from tropa.customers.identifiers import CustomerNotFound, Identifier, canonical_id
from tropa.dsl.plan import EventIn
from tropa.services.events import EventRouter
from tropa.store.db import session_scope

ORDER_ID_PATTERN = r"^[\w.:@-]+$"


class OrderFromEvent(orders.OrderData):
    """The order carried in the `data` of an `order.placed` event; other fields of the event
    (a payment link, say) stay in the event and are not part of the order."""

    model_config = ConfigDict(extra="ignore")

    order_id: str = Field(min_length=1, max_length=128, pattern=ORDER_ID_PATTERN)


def order_in_event(event: EventIn) -> OrderFromEvent | None:
    """The order an `order.placed` event carries (its data has `order_id` and `total`), or None
    for an event that only signals journeys; ValidationError for a malformed order."""
    if event.type != "order.placed" or not {"order_id", "total"} <= set(event.data):
        return None
    return OrderFromEvent.model_validate({"placed_at": event.occurred_at, **event.data})


async def record_event_order(router: EventRouter, event: EventIn,
                             actor: Actor) -> orders.Recorded | None:
    """Record the order an `order.placed` event carries; the event itself is the placement."""
    order = order_in_event(event)
    if order is None:
        return None
    data = orders.OrderData.model_validate(order.model_dump(exclude={"order_id"}))
    return await record_and_route(router, order.order_id, data, customer=event.customer_id,
                                  actor=actor, emit_placed=False)


def record(engine: sa.Engine, order_id: str, data: orders.OrderData, *,
           customer: Identifier | str, actor: Actor,
           emit_placed: bool = True) -> tuple[orders.Recorded, list[EventIn]]:
    """Record the order in one transaction; the events still to route (new, or left unrouted
    by an earlier attempt that died after its commit)."""
    with session_scope(engine) as session:
        customer_id = (orders.resolve_customer(session, customer)
                       if isinstance(customer, Identifier) else customer)
        found = canonical_id(session, customer_id)
        if found is None:
            raise CustomerNotFound(f"customer {customer_id!r} does not exist; create it with "
                                   f"PUT /v1/customers/{customer_id}")
        recorded = orders.record_order(session, order_id, data, customer_id=found,
                                       actor=actor, emit_placed=emit_placed)
        stored = [e.event_id for e in recorded.events]
    with session_scope(engine) as session:
        ids = stored or orders.order_event_ids(session, order_id)
        pending = [EventIn(event_id=e.event_id, type=e.type, customer_id=e.customer_id,
                           occurred_at=e.occurred_at, data=e.data)
                   for e in orders.unrouted_events(session, ids)]
    return recorded, pending


async def record_and_route(router: EventRouter, order_id: str, data: orders.OrderData, *,
                           customer: Identifier | str, actor: Actor,
                           emit_placed: bool = True) -> orders.Recorded:
    """Record the order, then route its events to journeys (after the commit)."""
    recorded, pending = await run_in_threadpool(
        lambda: record(router.engine, order_id, data, customer=customer, actor=actor,
                       emit_placed=emit_placed))
    for event in pending:
        await router.ingest(event)
    return recorded

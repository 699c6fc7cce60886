"""Orders: record purchases idempotently; the customer's purchase totals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from sqlmodel import Session

from tropa.api.actor import ActorDep
from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut, InvalidField
from tropa.api.routes.customers import CustomerId
from tropa.api.schemas.orders import OrderPublic, OrderRecorded, PurchaseTotals, StatusChange
from tropa.customers import orders
from tropa.customers.identifiers import CustomerNotFound, IdentifierInvalid
from tropa.customers.view import load_or_fail
from tropa.services.orders import ORDER_ID_PATTERN, record_and_route
from tropa.store.customer_models import Order

router = APIRouter(tags=["orders"], responses=ERRORS)
OrderId = Annotated[str, Path(min_length=1, max_length=128, pattern=ORDER_ID_PATTERN)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such order or customer"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The order belongs to another customer"}}


def to_public(session: Session, order: Order) -> OrderPublic:
    """The API view of an order with its status history."""
    history = [StatusChange.model_validate(c.model_dump())
               for c in orders.status_history(session, order.id)]
    return OrderPublic.model_validate({**order.model_dump(), "status_history": history})


@router.put("/v1/orders/{order_id}", response_model=OrderRecorded,
            dependencies=[Depends(require("events:write"))],
            responses={**NOT_FOUND, **CONFLICT})
async def put_order(order_id: OrderId, body: orders.OrderIn, request: Request,
                    actor: ActorDep) -> OrderRecorded:
    """Record an order; the same body again changes nothing. A new order raises
    `order.placed`, a status change `order.status_changed` (with `from` and `to`), a refund
    `order.refunded`; journeys see the order in `event.data`."""
    try:
        recorded = await record_and_route(request.app.state.event_router, order_id, body,
                                          customer=body.customer, actor=actor)
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except IdentifierInvalid as exc:
        raise InvalidField(["body", "customer", "value"], str(exc)) from exc
    except orders.OrderConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    return OrderRecorded.model_validate({**recorded.order.model_dump(),
                                         "outcome": recorded.outcome})


@router.get("/v1/orders/{order_id}", response_model=OrderPublic,
            dependencies=[Depends(require("read"))], responses=NOT_FOUND)
def get_order(order_id: OrderId, session: SessionDep) -> OrderPublic:
    """One order with its status changes."""
    order = session.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"order {order_id!r} does not exist; record it with "
                            f"PUT /v1/orders/{order_id}")
    return to_public(session, order)


@router.get("/v1/customers/{customer_id}/purchases", response_model=list[PurchaseTotals],
            dependencies=[Depends(require("read"))], responses=NOT_FOUND, tags=["customers"])
def purchase_totals(customer_id: CustomerId, session: SessionDep) -> list[PurchaseTotals]:
    """Count, sum, first and last purchase per currency (cancelled, unpaid and refunded
    orders do not count; partial refunds are taken off the sum)."""
    try:
        customer = load_or_fail(session, customer_id)
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return [PurchaseTotals.model_validate(s.model_dump())
            for s in orders.totals_of(session, customer.id)]

"""Customers: the data journeys address and personalise with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from tropa.api.deps import SessionDep, require
from tropa.api.schemas import CustomerPublic, CustomerUpsert
from tropa.clock import utcnow
from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.store.models import Customer

router = APIRouter(prefix="/v1/customers", tags=["customers"])
CustomerId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[\w.:@-]+$")]


def to_public(customer: Customer) -> CustomerPublic:
    """The API view of a stored customer."""
    return CustomerPublic.model_validate(customer.model_dump())


@router.put("/{customer_id}", response_model=CustomerPublic,
            dependencies=[Depends(require("events:write"))])
def upsert_customer(customer_id: CustomerId, body: CustomerUpsert,
                    session: SessionDep) -> CustomerPublic:
    """Create or replace a customer; phones are stored in E.164."""
    data = body.model_dump()
    try:
        if body.phone:
            data["phone"] = normalise_phone(body.phone)
        if body.email:
            data["email"] = normalise_email(body.email)
    except ContactInvalid as exc:
        field = "phone" if body.phone and "phone" in str(exc) else "email"
        raise HTTPException(422, [{"loc": ["body", field], "msg": str(exc),
                                   "type": "value_error"}]) from exc
    customer = session.get(Customer, customer_id)
    if customer is None:
        customer = Customer(id=customer_id, **data)
    else:
        for name, value in data.items():
            setattr(customer, name, value)
        customer.updated_at = utcnow()
    session.add(customer)
    session.flush()
    return to_public(customer)


@router.get("/{customer_id}", response_model=CustomerPublic,
            dependencies=[Depends(require("read"))])
def get_customer(customer_id: CustomerId, session: SessionDep) -> CustomerPublic:
    """One customer."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise HTTPException(404, f"customer {customer_id!r} does not exist")
    return to_public(customer)

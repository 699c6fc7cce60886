"""Customers: the data journeys address and personalise with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import ValidationError

from tropa.api.actor import current_actor
from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut, FieldError, InvalidField, field_errors
from tropa.api.schemas.common import ID_PATTERN, JsonObject
from tropa.api.schemas.customers import (
    BulkOutcome,
    BulkResult,
    Category,
    Channel,
    ConsentSet,
    CustomerBulk,
    CustomerBulkItem,
    CustomerPublic,
    CustomerUpdate,
    CustomerUpsert,
    TagChange,
)
from tropa.services import customers as service
from tropa.store.models import Customer

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=ERRORS,
                   dependencies=[Depends(current_actor)])  # the audit names the API key
CustomerId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "The customer does not exist"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The external_id belongs to another customer"}}
WRITE = [Depends(require("events:write"))]
READ = [Depends(require("read"))]


def to_public(customer: Customer) -> CustomerPublic:
    """The API view of a stored customer."""
    return CustomerPublic.model_validate(customer.model_dump())


def _call(fn: Any, **kwargs: Any) -> Customer:
    try:
        return fn(**kwargs)  # type: ignore[no-any-return]
    except service.CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except service.ContactRejected as exc:
        raise InvalidField(["body", exc.field], str(exc)) from exc
    except service.ExternalIdTaken as exc:
        raise HTTPException(409, str(exc)) from exc


@router.put("/{customer_id}", response_model=CustomerPublic, dependencies=WRITE,
            responses=CONFLICT)
def upsert_customer(customer_id: CustomerId, body: CustomerUpsert,
                    session: SessionDep) -> CustomerPublic:
    """Create or replace a customer; phones are stored in E.164."""
    def run(**kw: Any) -> Customer:
        return service.upsert(**kw)[0]
    return to_public(_call(run, session=session, customer_id=customer_id,
                           data=body.model_dump()))


@router.patch("/{customer_id}", response_model=CustomerPublic, dependencies=WRITE,
              responses={**NOT_FOUND, **CONFLICT})
def update_customer(customer_id: CustomerId, body: CustomerUpdate,
                    session: SessionDep) -> CustomerPublic:
    """Change only the fields given; the others stay as they are."""
    return to_public(_call(service.update, session=session, customer_id=customer_id,
                           changes=body.model_dump(exclude_unset=True)))


@router.get("/{customer_id}", response_model=CustomerPublic, dependencies=READ,
            responses=NOT_FOUND)
def get_customer(customer_id: CustomerId, session: SessionDep) -> CustomerPublic:
    """One customer."""
    return to_public(_call(service.get, session=session, customer_id=customer_id))


@router.get("", response_model=list[CustomerPublic], dependencies=READ)
def find_customers(
    session: SessionDep,
    phone: Annotated[str | None, Query(min_length=1, max_length=32,
                                       pattern=r"^[0-9+()\- .]+$")] = None,
    email: Annotated[str | None, Query(min_length=3, max_length=320,
                                       pattern=r"^[^\x00]+$")] = None,
    external_id: Annotated[str | None, Query(min_length=1, max_length=128,
                                             pattern=r"^[^\x00]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[CustomerPublic]:
    """Find customers by phone (any format), email or external id; give at least one."""
    if phone is None and email is None and external_id is None:
        raise InvalidField(["query", "phone"], "give at least one of phone, email, external_id")
    try:
        found = service.find(session, phone=phone, email=email, external_id=external_id,
                             limit=limit)
    except service.ContactRejected as exc:
        raise InvalidField(["query", exc.field], str(exc)) from exc
    return [to_public(c) for c in found]


@router.put("/{customer_id}/consents/{category}/{channel}", response_model=CustomerPublic,
            dependencies=WRITE, responses=NOT_FOUND)
def set_consent(customer_id: CustomerId, category: Category,
                channel: Annotated[Channel, Path()], body: ConsentSet,
                session: SessionDep) -> CustomerPublic:
    """Grant or withdraw consent to one category of messages over one channel."""
    return to_public(_call(service.set_consent, session=session, customer_id=customer_id,
                           category=category, channel=channel, granted=body.granted))


@router.post("/{customer_id}/tags", response_model=CustomerPublic, dependencies=WRITE,
             responses=NOT_FOUND)
def change_tags(customer_id: CustomerId, body: TagChange, session: SessionDep) -> CustomerPublic:
    """Add and remove tags."""
    return to_public(_call(service.change_tags, session=session, customer_id=customer_id,
                           add=body.add, remove=body.remove))


@router.patch("/{customer_id}/attributes", response_model=CustomerPublic, dependencies=WRITE,
              responses=NOT_FOUND)
def merge_attributes(customer_id: CustomerId, body: JsonObject,
                     session: SessionDep) -> CustomerPublic:
    """Set attributes by name; a null value removes the attribute."""
    return to_public(_call(service.merge_attributes, session=session,
                           customer_id=customer_id, values=body))


@router.post(":bulk", response_model=BulkResult, dependencies=WRITE)
def bulk_upsert(body: CustomerBulk, request: Request) -> BulkResult:
    """Create or replace up to 1,000 customers; each succeeds or fails on its own."""
    items: dict[int, BulkOutcome] = {}
    rows: list[service.BulkRow] = []
    for index, raw in enumerate(body.customers):
        prefix = ["body", "customers", index]
        raw_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            item = CustomerBulkItem.model_validate(raw)
            data = service.normalise_contacts(item.model_dump(exclude={"id"}))
        except ValidationError as exc:
            errors = field_errors(exc.errors(), prefix)
            items[index] = _rejected(index, raw_id, errors[0].message, errors)
            continue
        except service.ContactRejected as exc:
            error = field_errors([{"loc": [exc.field], "msg": str(exc)}], prefix)
            items[index] = _rejected(index, item.id, str(exc), error)
            continue
        rows.append(service.BulkRow(index=index, customer_id=item.id, data=data))
    ids = {r.index: r.customer_id for r in rows}
    for index, (status, reason) in service.bulk_upsert(request.app.state.engine, rows).items():
        items[index] = BulkOutcome(index=index, id=ids[index], status=status,  # type: ignore[arg-type]
                                   reason=reason)
    ordered = [items[i] for i in sorted(items)]
    return BulkResult(items=ordered, **{s: sum(i.status == s for i in ordered)
                                        for s in ("created", "updated", "rejected")})


def _rejected(index: int, customer_id: str | None, reason: str,
              errors: list[FieldError]) -> BulkOutcome:
    return BulkOutcome(index=index, id=customer_id or "", status="rejected", reason=reason,
                       errors=errors)

"""Customers: the data journeys address and personalise with.

Writes are atomic (the customer's row is locked for the request) and committed before the
answer. Each answer carries the customer's version as `ETag`; a client that reads, changes
and writes back sends it in `If-Match` and gets 412 when someone else wrote in between.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
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
ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": {
    "description": 'The customer\'s version, e.g. `"7"`; send it back in If-Match',
    "schema": {"type": "string"}}}}}
STALE: dict[int | str, dict[str, Any]] = {412: {
    "model": ErrorOut, "description": "If-Match names a version the customer is no longer at "
    "(the answer's ETag is the current one); GET it again and reapply the change"}}
IfMatch = Annotated[str | None, Header(
    max_length=1000, description='The ETag you read (`"7"`), or `*` for any existing version; '
    "the write happens only if the customer is still at that version, else 412. Without "
    "it the last writer wins (each write is still atomic).")]


def to_public(customer: Customer) -> CustomerPublic:
    """The API view of a stored customer."""
    return CustomerPublic.model_validate(customer.model_dump())


def etag(version: int) -> str:
    """The ETag of a customer version: a strong tag, `"7"`."""
    return f'"{version}"'


def expected(if_match: str | None) -> service.Expected | None:
    """The versions an If-Match header names (weak tags never match, as RFC 9110 says)."""
    if if_match is None:
        return None
    if if_match.strip() == "*":
        return service.Expected(any_version=True)
    tags = (t.strip() for t in if_match.split(","))
    return service.Expected(versions=frozenset(
        int(t[1:-1]) for t in tags if len(t) > 2 and t[0] == t[-1] == '"' and t[1:-1].isdigit()
        and len(t) < 22))


def _call(fn: Any, **kwargs: Any) -> Customer:
    try:
        return fn(**kwargs)  # type: ignore[no-any-return]
    except service.CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except service.ContactRejected as exc:
        raise InvalidField(["body", exc.field], str(exc)) from exc
    except service.ExternalIdTaken as exc:
        raise HTTPException(409, str(exc)) from exc
    except service.VersionMismatch as exc:
        raise HTTPException(412, str(exc), headers=None if exc.current is None
                            else {"ETag": etag(exc.current)}) from exc


def _write(response: Response, session: SessionDep, if_match: str | None, fn: Any,
           **kwargs: Any) -> CustomerPublic:
    """Apply a write under the customer's lock and commit it before answering."""
    customer = _call(fn, session=session, expected=expected(if_match), **kwargs)
    session.commit()
    response.headers["ETag"] = etag(customer.version)
    return to_public(customer)


@router.put("/{customer_id}", response_model=CustomerPublic, dependencies=WRITE,
            responses={**ETAG, **CONFLICT, **STALE})
def upsert_customer(customer_id: CustomerId, body: CustomerUpsert, session: SessionDep,
                    response: Response, if_match: IfMatch = None) -> CustomerPublic:
    """Create or replace a customer; phones are stored in E.164."""
    def run(**kw: Any) -> Customer:
        return service.upsert(**kw)[0]
    return _write(response, session, if_match, run, customer_id=customer_id,
                  data=body.model_dump())


@router.patch("/{customer_id}", response_model=CustomerPublic, dependencies=WRITE,
              responses={**ETAG, **NOT_FOUND, **CONFLICT, **STALE})
def update_customer(customer_id: CustomerId, body: CustomerUpdate, session: SessionDep,
                    response: Response, if_match: IfMatch = None) -> CustomerPublic:
    """Change only the fields given; the others stay as they are."""
    return _write(response, session, if_match, service.update, customer_id=customer_id,
                  changes=body.model_dump(exclude_unset=True))


@router.get("/{customer_id}", response_model=CustomerPublic, dependencies=READ,
            responses={**ETAG, **NOT_FOUND})
def get_customer(customer_id: CustomerId, session: SessionDep,
                 response: Response) -> CustomerPublic:
    """One customer; its ETag is what If-Match takes."""
    customer = _call(service.get, session=session, customer_id=customer_id)
    response.headers["ETag"] = etag(customer.version)
    return to_public(customer)


@router.get("", response_model=list[CustomerPublic], dependencies=READ)
def find_customers(
    session: SessionDep,
    phone: Annotated[str | None, Query(min_length=1, max_length=32,
                                       pattern=r"^[^\x00]+$")] = None,
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
            dependencies=WRITE, responses={**ETAG, **NOT_FOUND, **STALE})
def set_consent(customer_id: CustomerId, category: Category,
                channel: Annotated[Channel, Path()], body: ConsentSet, session: SessionDep,
                response: Response, if_match: IfMatch = None) -> CustomerPublic:
    """Grant or withdraw consent to one category of messages over one channel."""
    return _write(response, session, if_match, service.set_consent, customer_id=customer_id,
                  category=category, channel=channel, granted=body.granted)


@router.post("/{customer_id}/tags", response_model=CustomerPublic, dependencies=WRITE,
             responses={**ETAG, **NOT_FOUND, **STALE})
def change_tags(customer_id: CustomerId, body: TagChange, session: SessionDep,
                response: Response, if_match: IfMatch = None) -> CustomerPublic:
    """Add and remove tags."""
    return _write(response, session, if_match, service.change_tags, customer_id=customer_id,
                  add=body.add, remove=body.remove)


@router.patch("/{customer_id}/attributes", response_model=CustomerPublic, dependencies=WRITE,
              responses={**ETAG, **NOT_FOUND, **STALE})
def merge_attributes(customer_id: CustomerId, body: JsonObject, session: SessionDep,
                     response: Response, if_match: IfMatch = None) -> CustomerPublic:
    """Set attributes by name; a null value removes the attribute."""
    return _write(response, session, if_match, service.merge_attributes,
                  customer_id=customer_id, values=body)


@router.post(":bulk", response_model=BulkResult, dependencies=WRITE)
def bulk_upsert(body: CustomerBulk, request: Request) -> BulkResult:
    """Create or replace up to 1,000 customers; each succeeds or fails on its own."""
    items: dict[int, BulkOutcome] = {}
    rows: list[service.BulkRow] = []
    for index, raw in enumerate(body.customers):
        prefix: list[str | int] = ["body", "customers", index]
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
        items[index] = BulkOutcome(index=index, id=ids[index], status=status,
                                   reason=reason)
    ordered = [items[i] for i in sorted(items)]
    return BulkResult(items=ordered, **{s: sum(i.status == s for i in ordered)
                                        for s in ("created", "updated", "rejected")})


def _rejected(index: int, customer_id: str | None, reason: str,
              errors: list[FieldError]) -> BulkOutcome:
    return BulkOutcome(index=index, id=customer_id or "", status="rejected", reason=reason,
                       errors=errors)

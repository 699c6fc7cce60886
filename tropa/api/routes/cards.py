"""Customer lookup by any identifier, cards, tag definitions, a customer's history."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from tropa.api.actor import ActorDep
from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut, InvalidField
from tropa.api.routes.customers import CustomerId, to_public
from tropa.api.schemas.cards import (
    BARCODE_PATTERN,
    CardPublic,
    CardPut,
    HistoryEntry,
    TagPublic,
    TagPut,
)
from tropa.api.schemas.customers import CustomerPublic
from tropa.customers import audit, cards, exporting, tags
from tropa.customers.identifiers import (
    CustomerNotFound,
    Identifier,
    IdentifierInvalid,
    IdentifierTaken,
    resolve,
    resolve_card,
)
from tropa.customers.view import load_or_fail

router = APIRouter(tags=["customers"], responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such customer, card or tag"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The card belongs to another customer"}}
WRITE = [Depends(require("events:write"))]
READ = [Depends(require("read"))]
ADMIN = [Depends(require("admin"))]
Barcode = Annotated[str, Path(pattern=BARCODE_PATTERN, examples=["2900001234567"])]
TagName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^/\x00]+$")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Value = Annotated[str | None, Query(min_length=1, max_length=320, pattern=r"^[^\x00]+$")]


def lookup_or_http(session: Session, identifier: Identifier, place: str) -> str:
    """The customer id for an identifier; 404 if none, 422 at `place` if it cannot be read."""
    try:
        return resolve(session, identifier).id
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except IdentifierInvalid as exc:
        raise InvalidField(place.split("."), str(exc)) from exc


@router.get("/v1/customers:lookup", response_model=CustomerPublic, dependencies=READ,
            responses=NOT_FOUND)
def lookup_customer(session: SessionDep, phone: Value = None, email: Value = None,
                    card: Value = None, external_id: Value = None,
                    id: Value = None) -> CustomerPublic:
    """The customer with exactly one of: phone (any format), email, card barcode or track,
    external id, or Tropa id (a merged id finds the survivor)."""
    given = {k: v for k, v in (("phone", phone), ("email", email), ("card", card),
                               ("external_id", external_id), ("id", id)) if v is not None}
    if len(given) != 1:
        raise InvalidField(["query", "phone"], "give exactly one of phone, email, card, "
                           "external_id, id")
    (kind, value), = given.items()
    customer_id = lookup_or_http(session, Identifier(type=kind, value=value),
                                 f"query.{kind}")
    return to_public(load_or_fail(session, customer_id))


def _card_public(card: Any) -> CardPublic:
    return CardPublic.model_validate(card.model_dump())


@router.put("/v1/customers/{customer_id}/cards/{barcode}", response_model=CardPublic,
            dependencies=WRITE, responses={**NOT_FOUND, **CONFLICT})
def put_card(customer_id: CustomerId, barcode: Barcode, body: CardPut, session: SessionDep,
             actor: ActorDep) -> CardPublic:
    """Issue a card to a customer, or change its track, issue time or status (active/blocked)."""
    try:
        card, _ = cards.put_card(session, customer_id=customer_id, barcode=barcode,
                                 track=body.track, issued_at=body.issued_at,
                                 status=body.status, actor=actor)
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except IdentifierTaken as exc:
        raise HTTPException(409, str(exc)) from exc
    return _card_public(card)


@router.get("/v1/customers/{customer_id}/cards", response_model=list[CardPublic],
            dependencies=READ, responses=NOT_FOUND)
def list_cards(customer_id: CustomerId, session: SessionDep) -> list[CardPublic]:
    """A customer's cards, oldest first."""
    try:
        return [_card_public(c) for c in cards.cards_of(session, customer_id)]
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/v1/cards/{value}", response_model=CardPublic, dependencies=READ,
            responses=NOT_FOUND)
def get_card(value: Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/\x00]+$")],
             session: SessionDep) -> CardPublic:
    """A card by its barcode or magnetic track."""
    try:
        return _card_public(resolve_card(session, value))
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/v1/customers/{customer_id}/history", response_model=list[HistoryEntry],
            dependencies=READ, responses=NOT_FOUND)
def customer_history(customer_id: CustomerId, session: SessionDep,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                     ) -> list[HistoryEntry]:
    """Every change to the customer, its cards, orders and consents, newest first; page with
    `before` = the smallest `id` seen. Phones, emails and names show only that they changed."""
    try:
        customer = load_or_fail(session, customer_id)
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return [HistoryEntry.model_validate(e.model_dump())
            for e in audit.history(session, customer.id, limit=limit, before_id=before)]


@router.put("/v1/tags/{name}", response_model=TagPublic, dependencies=ADMIN, tags=["tags"])
def put_tag(name: TagName, body: TagPut, session: SessionDep, actor: ActorDep) -> TagPublic:
    """Define a tag or change its colour and description; customers keep plain tag names."""
    tag, _ = tags.put_tag(session, name=name, colour=body.colour,
                          description=body.description, actor=actor)
    return TagPublic.model_validate(tag.model_dump())


@router.get("/v1/tags", response_model=list[TagPublic], dependencies=READ, tags=["tags"])
def list_tags(session: SessionDep) -> list[TagPublic]:
    """Every defined tag, by name."""
    return [TagPublic.model_validate(t.model_dump()) for t in tags.list_tags(session)]


@router.get("/v1/tags/{name}", response_model=TagPublic, dependencies=READ, tags=["tags"],
            responses=NOT_FOUND)
def get_tag(name: TagName, session: SessionDep) -> TagPublic:
    """One tag's colour and description."""
    try:
        return TagPublic.model_validate(tags.get_tag(session, name).model_dump())
    except tags.TagNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.delete("/v1/tags/{name}", status_code=204, dependencies=ADMIN, tags=["tags"],
               responses=NOT_FOUND)
def delete_tag(name: TagName, session: SessionDep, actor: ActorDep) -> None:
    """Remove a tag's definition; customers keep the plain name."""
    try:
        tags.delete_tag(session, name, actor)
    except tags.TagNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/v1/customers:export", dependencies=ADMIN, responses={200: {"content": {
    "text/csv": {}, XLSX: {}}, "description": "Every customer, one a row"}})
async def export_customers(request: Request, background: BackgroundTasks,
                           format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
                           ) -> Response:
    """Every customer as CSV (streamed as it is read) or XLSX (written row by row to a
    temporary file, then sent)."""
    engine = request.app.state.engine
    if format == "csv":
        return StreamingResponse(iterate_in_threadpool(exporting.csv_chunks(engine)),
                                 media_type="text/csv", headers={
                                     "Content-Disposition": 'attachment; filename="customers.csv"'})
    folder = FilePath(tempfile.mkdtemp(prefix="tropa-export-"))
    path = folder / "customers.xlsx"
    await run_in_threadpool(exporting.export, engine, path)
    background.add_task(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(path, media_type=XLSX, filename="customers.xlsx")

"""Saved audiences: put, list, get, delete, and a preview of how many customers a filter holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut
from tropa.api.schemas.audiences import AudiencePreview, AudienceProblems, AudiencePublic
from tropa.audiences import Audience, count, page_customer_ids, parse_audience
from tropa.audiences import saved as service
from tropa.clock import utcnow
from tropa.errors import AudienceInvalid, AudienceNotFound, Problem
from tropa.store.audience_models import SavedAudience
from tropa.store.db import session_scope

router = APIRouter(tags=["audiences"], responses=ERRORS)
READ = [Depends(require("read"))]
ADMIN = [Depends(require("admin"))]
Name = Annotated[str, Path(pattern=service.NAME_PATTERN, examples=["loyal-moscow"])]
SAMPLE = 20
DOCUMENT = {"requestBody": {"required": True, "description": (
    "An audience document, YAML or JSON: `filter:` and an optional `description:`"),
    "content": {"application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object", "required": ["filter"],
                                                "properties": {
                                                    "description": {"type": "string"},
                                                    "filter": {"type": "object"}}}}}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"model": AudienceProblems, "description": "Problems, each with line and column"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No saved audience has this name"}}


def _invalid(exc: AudienceInvalid) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": f"the audience does not validate: {len(exc.problems)} problem(s)",
        "problems": [p.as_dict() for p in exc.problems]})


async def _document(request: Request) -> str:
    text = (await request.body()).decode("utf-8", errors="replace")
    if "\x00" in text:
        raise AudienceInvalid([Problem("the body contains a NUL character",
                                       source="<request>", hint="send plain UTF-8 text")])
    return text


def _public(row: SavedAudience) -> AudiencePublic:
    return AudiencePublic(name=row.name, description=row.description, filter=row.filter,
                          source=row.source, created_at=row.created_at,
                          updated_at=row.updated_at)


def _preview(engine: sa.Engine, audience: Audience, now: datetime) -> AudiencePreview:
    return AudiencePreview(count=count(engine, audience, now=now),
                           sample=page_customer_ids(engine, audience, now=now, after_id=None,
                                                    limit=SAMPLE), as_of=now)


@router.get("/v1/audiences", response_model=list[AudiencePublic], dependencies=READ)
def list_audiences(session: SessionDep) -> list[AudiencePublic]:
    """Every saved audience, by name."""
    return [_public(row) for row in service.all_saved(session)]


@router.get("/v1/audiences/{name}", response_model=AudiencePublic, dependencies=READ,
            responses=NOT_FOUND)
def get_audience(session: SessionDep, name: Name) -> AudiencePublic:
    """One saved audience with its filter."""
    try:
        return _public(service.get(session, name))
    except AudienceNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.put("/v1/audiences/{name}", response_model=AudiencePublic, dependencies=ADMIN,
            openapi_extra=DOCUMENT, responses={**PROBLEMS, 201: {
                "model": AudiencePublic, "description": "Created"}})
async def put_audience(name: Name, request: Request, response: Response) -> Any:
    """Save a filter under a name (201 when new, 200 when it replaced one)."""
    try:
        text = await _document(request)
        description, audience = await run_in_threadpool(service.read_document, text)
    except AudienceInvalid as exc:
        return _invalid(exc)

    def store() -> tuple[SavedAudience, bool]:
        with session_scope(request.app.state.engine) as session:
            return service.put(session, name, source=text, description=description,
                               audience=audience, now=utcnow())

    row, created = await run_in_threadpool(store)
    response.status_code = 201 if created else 200
    return _public(row)


@router.delete("/v1/audiences/{name}", status_code=204, dependencies=ADMIN,
               responses=NOT_FOUND)
def delete_audience(session: SessionDep, name: Name) -> Response:
    """Remove a saved audience; journeys naming it fire for no one until it is saved again."""
    try:
        service.delete(session, name)
    except AudienceNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return Response(status_code=204)


@router.post("/v1/audiences:preview", response_model=AudiencePreview, dependencies=READ,
             openapi_extra=DOCUMENT, responses=PROBLEMS)
async def preview_filter(request: Request) -> Any:
    """How many customers a filter holds now, with a sample of their ids; nothing is saved."""
    try:
        text = await _document(request)
        _, audience = await run_in_threadpool(service.read_document, text)
    except AudienceInvalid as exc:
        return _invalid(exc)
    return await run_in_threadpool(_preview, request.app.state.engine, audience, utcnow())


@router.get("/v1/audiences/{name}/preview", response_model=AudiencePreview,
            dependencies=READ, responses=NOT_FOUND)
def preview_saved(session: SessionDep, request: Request, name: Name) -> AudiencePreview:
    """How many customers a saved audience holds now, with a sample of their ids."""
    try:
        row = service.get(session, name)
    except AudienceNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    audience = parse_audience(row.filter, name=f"<audience {name}>")
    return _preview(request.app.state.engine, audience, utcnow())

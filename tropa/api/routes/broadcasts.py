"""Broadcasts: one message to an audience; create, list, read with progress, pause,
resume, cancel."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError, RPCStatusCode

from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut, FieldError, invalid_response
from tropa.api.schemas.broadcasts import (
    BroadcastCreate,
    BroadcastPage,
    BroadcastPublic,
    BroadcastStatus,
    BroadcastSummary,
)
from tropa.broadcasts import store
from tropa.broadcasts.progress import progress
from tropa.errors import AudienceInvalid, AudienceNotFound
from tropa.services import broadcasts as service
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import session_scope

router = APIRouter(tags=["broadcasts"], responses=ERRORS)
ADMIN = [Depends(require("admin"))]
READ = [Depends(require("read"))]
ID = r"^bc_[0-9]{14}_[0-9a-f]{8}$"
BroadcastId = Annotated[str, Path(pattern=ID, examples=["bc_20261201070000_1a2b3c4d"])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No broadcast has this id"}}
CHANGES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": ErrorOut, "description": "The broadcast's state does not allow it; the "
          "detail names the state"}}


def _summary(row: Broadcast) -> BroadcastSummary:
    return BroadcastSummary.model_validate(row.model_dump())


def _public(session: Session, row: Broadcast) -> BroadcastPublic:
    return BroadcastPublic.model_validate({**row.model_dump(),
                                           "progress": progress(session, row.id)})


def _read(engine: sa.Engine, broadcast_id: str) -> BroadcastPublic:
    with session_scope(engine) as session:
        return _public(session, store.get(session, broadcast_id))


def _audience_problems(exc: AudienceInvalid) -> JSONResponse:
    errors = []
    for problem in exc.problems:
        loc: list[str | int] = ["body", "audience"]
        where = f"$.audience{'.' + problem.path if problem.path else ''}"
        message = problem.message + (f"; {problem.hint}" if problem.hint else "")
        errors.append(FieldError(path=where, loc=loc, message=message, type="audience"))
    return invalid_response(errors)


@router.post("/v1/broadcasts", status_code=201, response_model=BroadcastPublic,
             dependencies=ADMIN, responses={404: {"model": ErrorOut, "description":
                                                  "The saved audience does not exist"}})
async def create_broadcast(body: BroadcastCreate, request: Request) -> Any:
    """Create a broadcast and start it (now, at an instant, or in each customer's local time)."""
    new = service.NewBroadcast(
        name=body.name, channel=body.send.channel, audience=body.audience,
        send=body.send.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        start=body.start.stored(), holdout_percent=body.holdout_percent)
    state = request.app.state
    try:
        row = await service.create(state.engine, state.temporal, state.settings, new)
    except AudienceInvalid as exc:
        return _audience_problems(exc)
    except AudienceNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return await run_in_threadpool(_read, state.engine, row.id)


@router.get("/v1/broadcasts", response_model=BroadcastPage, dependencies=READ)
def list_broadcasts(session: SessionDep, status: BroadcastStatus | None = None,
                    after: Annotated[str | None, Query(pattern=ID)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> BroadcastPage:
    """Broadcasts, oldest first, optionally of one status."""
    rows = store.listing(session, status=status, after=after, limit=limit)
    return BroadcastPage(broadcasts=[_summary(r) for r in rows],
                         next_after=rows[-1].id if len(rows) == limit else None)


@router.get("/v1/broadcasts/{broadcast_id}", response_model=BroadcastPublic,
            dependencies=READ, responses=NOT_FOUND)
def get_broadcast(broadcast_id: BroadcastId, session: SessionDep) -> BroadcastPublic:
    """One broadcast with its progress: recipients, queued, sent, delivered, suppressed by
    reason, failed, holdout."""
    try:
        return _public(session, store.get(session, broadcast_id))
    except store.BroadcastNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


async def _control(request: Request, broadcast_id: str, action: str) -> Any:
    state = request.app.state
    try:
        await service.control(state.engine, state.temporal, broadcast_id, action)
    except store.BroadcastNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except store.BroadcastConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise HTTPException(409, f"broadcast {broadcast_id} has already ended") from exc
    return await run_in_threadpool(_read, state.engine, broadcast_id)


@router.post("/v1/broadcasts/{broadcast_id}:pause", response_model=BroadcastPublic,
             dependencies=ADMIN, responses=CHANGES)
async def pause_broadcast(broadcast_id: BroadcastId, request: Request) -> Any:
    """Pause after the page under way; nothing more goes out until resumed."""
    return await _control(request, broadcast_id, "pause")


@router.post("/v1/broadcasts/{broadcast_id}:resume", response_model=BroadcastPublic,
             dependencies=ADMIN, responses=CHANGES)
async def resume_broadcast(broadcast_id: BroadcastId, request: Request) -> Any:
    """Go on with a paused broadcast."""
    return await _control(request, broadcast_id, "resume")


@router.post("/v1/broadcasts/{broadcast_id}:cancel", response_model=BroadcastPublic,
             dependencies=ADMIN, responses=CHANGES)
async def cancel_broadcast(broadcast_id: BroadcastId, request: Request) -> Any:
    """Cancel: the page under way finishes, every recipient not yet handled is left out."""
    return await _control(request, broadcast_id, "cancel")

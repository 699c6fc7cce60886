"""Runs: one customer's trip through a journey, read from Temporal."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut, InvalidField
from tropa.api.schemas.common import ID_PATTERN
from tropa.api.schemas.runs import MessageOut, RunDetailPublic, RunPage, RunPublic
from tropa.dsl.spec import NAME_PATTERN
from tropa.services import runs as service

router = APIRouter(tags=["runs"], responses=ERRORS)
READ = [Depends(require("read"))]
WorkflowId = Annotated[str, Path(min_length=1, max_length=400, pattern=r"^[^\x00]+$",
                                 examples=["journey/abandoned-cart/c-42/k9"])]
PageSize = Annotated[int, Query(ge=1, le=500)]
PageToken = Annotated[str | None, Query(max_length=4000, pattern=r"^[A-Za-z0-9_=-]+$")]
State = Annotated[Literal["running", "closed"] | None,
                  Query(description="running, or closed (every ended run)")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "The run does not exist"}}


def public(request: Request, info: service.RunInfo) -> RunPublic:
    """A RunInfo with its Web UI link."""
    temporal = request.app.state.settings.temporal
    return RunPublic(**vars(info), ui_url=service.ui_link(
        temporal.web_ui(), request.app.state.temporal.namespace, info.workflow_id))


def encode_token(token: bytes) -> str:
    """Temporal's page token with a checksum, so garbage never reaches Temporal."""
    return base64.urlsafe_b64encode(hashlib.sha256(token).digest()[:8] + token).decode()


def decode_token(text: str) -> bytes:
    """The Temporal page token inside `text`; InvalidField when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) <= 8 or hashlib.sha256(raw[8:]).digest()[:8] != raw[:8]:
        raise InvalidField(["query", "page_token"],
                           "not a page token from this API; pass next_page_token as given")
    return raw[8:]


async def _page(request: Request, *, page_size: int, page_token: str | None,
                state: str | None, **filters: str | None) -> RunPage:
    token = decode_token(page_token) if page_token else None
    query = service.visibility_query(running=None if state is None else state == "running",
                                     **filters)
    try:
        infos, next_token = await service.list_runs(request.app.state.temporal, query,
                                                    page_size=page_size, page_token=token)
    except service.BadPageToken as exc:
        raise InvalidField(["query", "page_token"], "not a page token from this API") from exc
    return RunPage(runs=[public(request, i) for i in infos],
                   next_page_token=encode_token(next_token) if next_token else None)


@router.get("/v1/runs", response_model=RunPage, dependencies=READ)
async def list_runs(
    request: Request,
    journey: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    customer_id: Annotated[str | None, Query(max_length=128, pattern=ID_PATTERN)] = None,
    version: Annotated[str | None, Query(pattern=r"^[\w.-]{1,64}$")] = None,
    state: State = None, page_size: PageSize = 50, page_token: PageToken = None,
) -> RunPage:
    """Runs by journey, customer and version, from Temporal visibility, newest first."""
    return await _page(request, page_size=page_size, page_token=page_token, state=state,
                       journey=journey, customer=customer_id, version=version)


@router.get("/v1/journeys/{name}/runs", response_model=RunPage, dependencies=READ)
async def journey_runs(request: Request, name: Annotated[str, Path(pattern=NAME_PATTERN)],
                       state: State = None, page_size: PageSize = 50,
                       page_token: PageToken = None) -> RunPage:
    """A journey's runs, newest first."""
    return await _page(request, page_size=page_size, page_token=page_token, state=state,
                       journey=name)


@router.get("/v1/customers/{customer_id}/runs", response_model=RunPage, dependencies=READ)
async def customer_runs(request: Request,
                        customer_id: Annotated[str, Path(max_length=128, pattern=ID_PATTERN)],
                        state: State = None, page_size: PageSize = 50,
                        page_token: PageToken = None) -> RunPage:
    """A customer's runs in every journey, newest first."""
    return await _page(request, page_size=page_size, page_token=page_token, state=state,
                       customer=customer_id)


@router.post("/v1/runs/{workflow_id:path}/cancel", status_code=202, response_model=RunPublic,
             dependencies=[Depends(require("admin"))],
             responses={**NOT_FOUND, 409: {"model": ErrorOut,
                                           "description": "The run has ended already"}})
async def cancel_run(workflow_id: WorkflowId, request: Request) -> RunPublic:
    """Ask a running run to stop; it ends as cancelled once its worker sees the request."""
    try:
        info = await service.cancel(request.app.state.temporal, workflow_id)
    except service.RunNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except service.RunClosed as exc:
        raise HTTPException(409, str(exc)) from exc
    return public(request, info)


@router.get("/v1/runs/{workflow_id:path}", response_model=RunDetailPublic, dependencies=READ,
            responses=NOT_FOUND)
async def get_run(workflow_id: WorkflowId, request: Request) -> RunDetailPublic:
    """A run's current step, every step done, and the messages it sent."""
    try:
        detail = await service.run_detail(request.app.state.temporal,
                                          request.app.state.engine, workflow_id)
    except service.RunNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    base = public(request, detail.info)
    return RunDetailPublic(
        **base.model_dump(), steps=detail.steps or [], steps_known=detail.steps is not None,
        messages=[MessageOut.model_validate(m.model_dump()) for m in detail.messages])

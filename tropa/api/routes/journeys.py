"""Journeys: validate, store versions, publish, pause, resume, archive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut
from tropa.api.schemas.journeys import (
    JourneyProblems,
    JourneyPublic,
    JourneySummary,
    JourneyValidated,
    JourneyVersionPublic,
    VersionDetail,
    VersionSummary,
)
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import Plan
from tropa.dsl.spec import NAME_PATTERN
from tropa.errors import JourneyInvalid, Problem
from tropa.services import journeys as service
from tropa.services.journey_schedules import sync_journey
from tropa.services.runs import count_by_version
from tropa.store.db import session_scope
from tropa.store.models import Journey, JourneyVersion

router = APIRouter(prefix="/v1/journeys", tags=["journeys"], responses=ERRORS)
T = TypeVar("T")
Name = Annotated[str, Path(pattern=NAME_PATTERN, examples=["abandoned-cart"])]
Version = Annotated[str, Path(pattern=r"^[\w.-]{1,64}$", examples=["3f2a9c1b7d4e"])]
ADMIN = [Depends(require("admin"))]
READ = [Depends(require("read"))]
YAML_BODY = {"requestBody": {"required": True, "description": "The journey YAML",
                             "content": {"application/yaml": {"schema": {"type": "string"}}}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"model": JourneyProblems, "description": "Problems, each with line and column"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "The journey or version does not exist"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The journey's status does not allow it"}}


def invalid(exc: JourneyInvalid) -> JSONResponse:
    """422 with every problem, each with line and column."""
    return JSONResponse(status_code=422, content={
        "detail": f"the journey does not validate: {len(exc.problems)} problem(s)",
        "problems": [p.as_dict() for p in exc.problems],
    })


async def _yaml(request: Request) -> str:
    text = (await request.body()).decode("utf-8", errors="replace")
    if "\x00" in text:
        raise JourneyInvalid([Problem("the YAML contains a NUL character", source="<request>",
                                      hint="send the file as plain UTF-8 text")])
    return text


# Validation is CPU work bounded by the file's size (tropa.dsl.positions.MAX_BYTES) and the
# template sandbox. It runs in a worker thread so the event loop keeps serving, at most
# MAX_VALIDATIONS at a time so the thread pool stays free for event intake, and a validation
# that does not finish (waiting included) within VALIDATE_TIMEOUT is refused.
VALIDATE_TIMEOUT = 10.0
MAX_VALIDATIONS = 2


def _validations(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    if getattr(state, "journey_validations", None) is None:
        state.journey_validations = asyncio.Semaphore(MAX_VALIDATIONS)
    semaphore: asyncio.Semaphore = state.journey_validations
    return semaphore


async def _compiled(request: Request, text: str) -> Plan:
    """Compile off the event loop, within VALIDATE_TIMEOUT; raises JourneyInvalid."""
    try:
        async with asyncio.timeout(VALIDATE_TIMEOUT), _validations(request):
            return await run_in_threadpool(compile_journey, text, "<request>")
    except TimeoutError:
        raise JourneyInvalid([Problem(
            f"validating the journey took longer than {VALIDATE_TIMEOUT:g} s",
            source="<request>", line=1, column=1,
            hint="make the journey smaller or its templates simpler, or try again")]) from None


async def _db(request: Request, work: Callable[[Session], T]) -> T:
    """`work` with a session, in a worker thread (the routes here are async for Temporal's
    calls, so the database never runs on the event loop); committed when it returns."""
    def run() -> T:
        with session_scope(request.app.state.engine) as session:
            return work(session)
    return await run_in_threadpool(run)


def _with_versions(journey: Journey, session: Session) -> tuple[Journey, list[JourneyVersion]]:
    return journey, service.versions_of(session, journey.name)


async def _summary(request: Request, journey: Journey,
                   rows: list[JourneyVersion]) -> JourneySummary:
    counts = await count_by_version(request.app.state.temporal, journey.name,
                                    [r.version for r in rows])
    versions = [VersionSummary(version=r.version, created_at=r.created_at,
                               published_at=r.published_at,
                               live=r.version == journey.live_version,
                               running=counts[r.version][0], finished=counts[r.version][1])
                for r in rows]
    return JourneySummary(name=journey.name, status=journey.status,
                          live_version=journey.live_version,
                          running=sum(v.running for v in versions),
                          finished=sum(v.finished for v in versions), versions=versions)


async def _public(request: Request, journey: Journey,
                  versions: list[JourneyVersion]) -> JourneyPublic:
    summary = await _summary(request, journey, versions)
    rows = {r.version: r for r in versions}
    return JourneyPublic(**summary.model_dump(exclude={"versions"}), versions=[
        VersionDetail(**v.model_dump(), source_yaml=rows[v.version].source_yaml,
                      plan=rows[v.version].plan) for v in summary.versions])


@router.get("", response_model=list[JourneySummary], dependencies=READ)
async def list_journeys(request: Request) -> list[JourneySummary]:
    """Every journey with its running and finished runs per version."""
    def load(session: Session) -> list[tuple[Journey, list[JourneyVersion]]]:
        journeys = session.exec(select(Journey).order_by(Journey.name))
        return [_with_versions(j, session) for j in journeys]

    return [await _summary(request, j, rows) for j, rows in await _db(request, load)]


@router.post(":validate", response_model=JourneyValidated, dependencies=READ,
             responses=PROBLEMS, openapi_extra=YAML_BODY)
async def validate_journey(request: Request) -> JourneyValidated | JSONResponse:
    """Check journey YAML without storing it; problems come with line and column."""
    try:
        plan = await _compiled(request, await _yaml(request))
    except JourneyInvalid as exc:
        return invalid(exc)
    return JourneyValidated(journey=plan.journey, version=plan.version,
                            trigger=plan.trigger.event, category=plan.category,
                            re_entry=plan.re_entry, plan=plan.model_dump(mode="json"))


@router.post("", status_code=201, response_model=JourneyVersionPublic, dependencies=ADMIN,
             responses=PROBLEMS, openapi_extra=YAML_BODY)
async def create_version(request: Request) -> JourneyVersionPublic | JSONResponse:
    """Validate journey YAML and store it as a version (not yet live)."""
    try:
        text = await _yaml(request)
        await _compiled(request, text)  # refuse a bad file off the event loop, before storing
        row = await _db(request, lambda session: service.create_version(session, text))
    except JourneyInvalid as exc:
        return invalid(exc)
    # `_db` committed before this answer, so a client publishing right after the 201 finds
    # the version.
    return JourneyVersionPublic.model_validate(row.model_dump())


@router.get("/{name}", response_model=JourneyPublic, dependencies=READ, responses=NOT_FOUND)
async def get_journey(name: Name, request: Request) -> JourneyPublic:
    """A journey with all its versions, their YAML and run counts."""
    try:
        journey, versions = await _db(
            request, lambda session: _with_versions(service.get_journey(session, name), session))
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return await _public(request, journey, versions)


@router.post("/{name}/versions/{version}/publish", response_model=JourneyPublic,
             dependencies=ADMIN, responses={**NOT_FOUND, **CONFLICT})
async def publish_version(name: Name, version: Version, request: Request) -> JourneyPublic:
    """Make a version live: its trigger starts runs from now on."""
    return await _go_live(request, lambda session: service.publish(session, name, version))


@router.post("/{name}/{action}", response_model=JourneyPublic, dependencies=ADMIN,
             responses={**NOT_FOUND, **CONFLICT})
async def change_status(name: Name, action: Literal["pause", "resume", "archive"],
                        request: Request) -> JourneyPublic:
    """Pause (no new entries), resume, or archive a journey; runs in flight go on."""
    return await _go_live(request, lambda session: service.change_status(session, name, action))


async def _go_live(request: Request, change: Callable[[Session], Journey]) -> JourneyPublic:
    """Apply a change of what is live, commit it, and make the event router see it now."""
    try:
        journey, versions = await _db(request, lambda session: _with_versions(
            change(session), session))
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except service.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    request.app.state.catalogue.invalidate()  # committed above: the next event sees it
    # committed above too: the journey's own Schedule follows what is live now
    await sync_journey(request.app.state.temporal, request.app.state.engine, journey.name,
                       request.app.state.settings.temporal.task_queue)
    return await _public(request, journey, versions)

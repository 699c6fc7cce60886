"""Journeys: validate, store versions, publish."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlmodel import select

from tropa.api.deps import SessionDep, require
from tropa.api.schemas import JourneyPublic, JourneyVersionPublic
from tropa.errors import JourneyInvalid
from tropa.services import journeys as service
from tropa.store.models import Journey, JourneyVersion

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])

YAML_BODY = {"requestBody": {"required": True, "description": "The journey YAML",
                             "content": {"application/yaml": {"schema": {"type": "string"}}}}}


def invalid(exc: JourneyInvalid) -> JSONResponse:
    """422 with every problem, each with line and column."""
    return JSONResponse(status_code=422, content={
        "detail": "the journey does not validate",
        "problems": [p.as_dict() for p in exc.problems],
    })


def _public(session: SessionDep, journey: Journey) -> JourneyPublic:
    rows = session.exec(select(JourneyVersion).where(JourneyVersion.journey == journey.name)
                        .order_by(JourneyVersion.id))  # type: ignore[arg-type]
    return JourneyPublic(
        name=journey.name, status=journey.status, live_version=journey.live_version,
        versions=[JourneyVersionPublic.model_validate(r.model_dump()) for r in rows],
    )


@router.post("", status_code=201, response_model=JourneyVersionPublic,
             dependencies=[Depends(require("admin"))],
             responses={422: {"description": "Problems with line and column"}},
             openapi_extra=YAML_BODY)
async def create_version(request: Request, session: SessionDep) -> JourneyVersionPublic | JSONResponse:
    """Validate journey YAML and store it as a version (not yet live)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        row = service.create_version(session, text)
    except JourneyInvalid as exc:
        return invalid(exc)
    return JourneyVersionPublic.model_validate(row.model_dump())


@router.get("/{name}", response_model=JourneyPublic, dependencies=[Depends(require("read"))])
def get_journey(name: str, session: SessionDep) -> JourneyPublic:
    """A journey with all its versions."""
    journey = session.get(Journey, name)
    if journey is None:
        raise HTTPException(404, f"journey {name!r} does not exist")
    return _public(session, journey)


@router.post("/{name}/versions/{version}/publish", response_model=JourneyPublic,
             dependencies=[Depends(require("admin"))])
def publish_version(name: str, version: str, request: Request,
                    session: SessionDep) -> JourneyPublic:
    """Make a version live: its trigger starts runs from now on."""
    try:
        journey = service.publish(session, name, version)
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    session.commit()
    request.app.state.catalogue.invalidate()
    return _public(session, journey)

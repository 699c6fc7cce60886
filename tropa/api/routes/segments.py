"""RF segments: sizes now and over time, members, moves, a customer's history, configuration."""

from __future__ import annotations

from datetime import date, datetime
from importlib.resources import files
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS
from tropa.api.schemas.common import ID_PATTERN
from tropa.api.schemas.segments import (
    CustomerSegmentPublic,
    MoveCount,
    RfConfigApplied,
    RfConfigPublic,
    SegmentMember,
    SegmentMembers,
    SegmentMovePublic,
    SegmentSize,
    SnapshotPublic,
)
from tropa.clock import utcnow
from tropa.segments.config import DEFAULT_CONFIG, SEGMENTS, RfConfigInvalid
from tropa.services import segments as service
from tropa.store.models import Customer
from tropa.store.segment_models import (
    CustomerSegment,
    RfConfigVersion,
    SegmentMove,
    SegmentSnapshot,
)

router = APIRouter(tags=["segments"], responses=ERRORS)
READ = [Depends(require("read"))]
ADMIN = [Depends(require("admin"))]
SegmentName = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$", examples=["at_risk"])]
YAML_BODY = {"requestBody": {"required": True, "description": "An RF configuration as YAML",
                             "content": {"application/yaml": {"schema": {"type": "string"}}}}}


def _invalid(exc: RfConfigInvalid) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": f"the RF configuration does not validate: {len(exc.problems)} problem(s)",
        "problems": [p.as_dict() for p in exc.problems]})


async def _yaml(request: Request) -> str:
    return (await request.body()).decode("utf-8", errors="replace").replace("\x00", "")


def _known(segment: str) -> None:
    if segment not in SEGMENTS:
        raise HTTPException(404, f"segment `{segment}` does not exist; the segments are "
                            f"{', '.join(SEGMENTS)}")


@router.get("/v1/customers/{customer_id}/segment", response_model=CustomerSegmentPublic,
            dependencies=READ)
def customer_segment(session: SessionDep, customer_id: Annotated[str, Path(
        pattern=ID_PATTERN)]) -> CustomerSegmentPublic:
    """A customer's current RF segment and the full history of moves between segments."""
    if session.get(Customer, customer_id) is None:
        raise HTTPException(404, f"customer {customer_id!r} does not exist")
    current = session.get(CustomerSegment, customer_id)
    moves = session.exec(select(SegmentMove).where(SegmentMove.customer_id == customer_id)
                         .order_by(SegmentMove.id)).all()  # type: ignore[arg-type]
    return CustomerSegmentPublic(
        customer_id=customer_id, segment=current.segment if current else None,
        since=current.since if current else None,
        history=[SegmentMovePublic(from_segment=m.from_segment, to_segment=m.to_segment,
                                   at=m.at, cause=m.cause) for m in moves])


@router.get("/v1/segments", response_model=list[SegmentSize], dependencies=READ)
def segment_sizes(session: SessionDep) -> list[SegmentSize]:
    """Every segment with its meaning and how many customers are in it now."""
    counts = dict(session.exec(select(CustomerSegment.segment, sa.func.count())
                               .group_by(CustomerSegment.segment)).all())
    return [SegmentSize(segment=name, description=text, customers=int(counts.get(name, 0)))
            for name, text in SEGMENTS.items()]


@router.get("/v1/segments:history", response_model=list[SnapshotPublic], dependencies=READ)
def segment_history(session: SessionDep, start: Annotated[date, Query(alias="from")],
                    end: Annotated[date, Query(alias="to")]) -> list[SnapshotPublic]:
    """Segment sizes at the end of each day in [from, to], from the daily snapshots."""
    rows = session.exec(select(SegmentSnapshot).where(
        SegmentSnapshot.day >= start, SegmentSnapshot.day <= end)
        .order_by(SegmentSnapshot.day, SegmentSnapshot.segment)).all()  # type: ignore[arg-type]
    return [SnapshotPublic(day=r.day, segment=r.segment, customers=r.customers) for r in rows]


@router.get("/v1/segments:moves", response_model=list[MoveCount], dependencies=READ)
def segment_moves(session: SessionDep, start: Annotated[datetime, Query(alias="from")],
                  end: Annotated[datetime, Query(alias="to")]) -> list[MoveCount]:
    """The move matrix: how many moves went from which segment to which in [from, to)."""
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(422, f"query.{name}: give a time zone, e.g. 2027-01-01T00:00Z")
    rows = session.exec(select(SegmentMove.from_segment, SegmentMove.to_segment,
                               sa.func.count()).where(
        SegmentMove.at >= start, SegmentMove.at < end)
        .group_by(SegmentMove.from_segment, SegmentMove.to_segment)).all()  # type: ignore[arg-type]
    return [MoveCount(from_segment=f, to_segment=t, customers=int(n)) for f, t, n in rows]


@router.get("/v1/segments/{segment}/customers", response_model=SegmentMembers,
            dependencies=READ)
def segment_members(session: SessionDep, segment: SegmentName,
                    after: Annotated[str | None, Query(max_length=128)] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> SegmentMembers:
    """The customers in a segment, by id, a page at a time."""
    _known(segment)
    query = select(CustomerSegment).where(CustomerSegment.segment == segment)
    if after is not None:
        query = query.where(CustomerSegment.customer_id > after)
    rows = session.exec(query.order_by(CustomerSegment.customer_id).limit(limit)).all()
    return SegmentMembers(
        segment=segment, customers=[SegmentMember(customer_id=r.customer_id, since=r.since)
                                    for r in rows],
        next_after=rows[-1].customer_id if len(rows) == limit else None)


@router.get("/v1/segments/config", response_model=RfConfigPublic, dependencies=READ)
def get_config(session: SessionDep) -> RfConfigPublic:
    """The RF configuration in force (bands, window and grid) as YAML."""
    row = session.exec(select(RfConfigVersion)
                       .order_by(RfConfigVersion.id.desc())).first()  # type: ignore[union-attr]
    if row is None:
        text = files("tropa.segments").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
        return RfConfigPublic(source_yaml=text, applied_at=None)
    return RfConfigPublic(source_yaml=row.source_yaml, applied_at=row.applied_at)


@router.post("/v1/segments/config:preview", response_model=list[MoveCount],
             dependencies=READ, openapi_extra=YAML_BODY,
             responses={422: {"description": "Problems, each with line and column"}})
async def preview_config(request: Request) -> Any:
    """How many customers a new configuration would move, from which segment to which."""
    text = await _yaml(request)
    try:
        matrix = await run_in_threadpool(service.preview_config, request.app.state.engine,
                                         text, now=utcnow())
    except RfConfigInvalid as exc:
        return _invalid(exc)
    return [MoveCount(from_segment=f, to_segment=t, customers=n)
            for (f, t), n in sorted(matrix.items(), key=lambda kv: (str(kv[0][0]),
                                                                    str(kv[0][1])))]


@router.put("/v1/segments/config", response_model=RfConfigApplied, dependencies=ADMIN,
            openapi_extra=YAML_BODY,
            responses={422: {"description": "Problems, each with line and column"}})
async def put_config(request: Request) -> Any:
    """Put a configuration in force: every customer it moves moves now, with events."""
    text = await _yaml(request)
    try:
        moved, events = await run_in_threadpool(service.apply_config, request.app.state.engine,
                                                text, now=utcnow())
    except RfConfigInvalid as exc:
        return _invalid(exc)
    for event in events:
        await request.app.state.event_router.ingest(event)
    return RfConfigApplied(moved=moved, events=len(events))

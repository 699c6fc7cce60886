"""Import jobs: a customers or orders file sent as the request body, checked and imported in
the background; progress and the report of rejected rows by job id."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tropa.api.actor import ActorDep
from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut, InvalidField
from tropa.customers.audit import Actor
from tropa.customers.imports import job
from tropa.customers.imports.orders import import_orders
from tropa.customers.tabular import TableUnreadable
from tropa.logs import get_logger
from tropa.store.customer_models import ImportJob

log = get_logger("imports")
router = APIRouter(prefix="/v1/imports", tags=["imports"], responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such import job, or it has no report"}}
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w-]+$")]


class ImportJobPublic(BaseModel):
    """An import job: its progress, counts and, once done, where its report is."""

    id: str
    kind: Literal["customers", "orders"]
    filename: str
    status: Literal["queued", "running", "done", "failed"]
    dry_run: bool
    rows_total: int
    rows_done: int
    imported: int
    unchanged: int
    rejected: int
    report_url: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _public(row: ImportJob) -> ImportJobPublic:
    data = row.model_dump()
    data["report_url"] = f"/v1/imports/{row.id}/report" if row.report_path else None
    data["filename"] = FilePath(row.filename).name
    return ImportJobPublic.model_validate(data)


def _run(engine: Any, path: FilePath, kind: str, job_id: str, dry_run: bool, actor: Actor) -> None:
    run = job.import_customers if kind == "customers" else import_orders
    try:
        run(engine, path, job_id=job_id, dry_run=dry_run,
            actor=Actor("import", job_id, f"{path.name} by {actor.name or actor.id}"[:200]),
            report_path=path.with_name("rejected.csv"))
    except (TableUnreadable, OSError):
        pass  # recorded on the job as failed, with the reason
    except Exception as exc:
        log.error("import_failed", job_id=job_id, error=type(exc).__name__)
        with engine.begin() as conn:
            conn.execute(ImportJob.__table__.update()  # type: ignore[attr-defined]
                         .where(ImportJob.__table__.c.id == job_id)  # type: ignore[attr-defined]
                         .values(status="failed", error=f"internal error ({type(exc).__name__})"))


@router.post("", status_code=202, response_model=ImportJobPublic,
             dependencies=[Depends(require("admin"))],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                     "schema": {"type": "string", "format": "binary"}}}}})
async def start_import(
    request: Request, actor: ActorDep,
    filename: Annotated[str, Query(min_length=5, max_length=200,
                                   pattern=r"^[\w][\w .-]*\.(csv|xlsx|CSV|XLSX)$",
                                   description="The file's name; .csv or .xlsx")],
    kind: Annotated[Literal["customers", "orders"], Query()] = "customers",
    dry_run: Annotated[bool, Query(description="check every row, write nothing")] = False,
) -> ImportJobPublic:
    """Import customers or orders from the file in the body (CSV or XLSX, up to the body
    limit; larger files with `tropa customers import`). Poll `GET /v1/imports/{id}`."""
    body = await request.body()
    if not body:
        raise InvalidField(["body"], "send the file's bytes as the request body")
    engine = request.app.state.engine
    job_id = await run_in_threadpool(job.new_job, engine, kind, filename, dry_run=dry_run)
    folder = FilePath(request.app.state.settings.data_dir) / "imports" / job_id
    path = folder / FilePath(filename).name

    def save() -> ImportJob:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        with engine.connect() as conn:
            row = conn.execute(ImportJob.__table__.select()  # type: ignore[attr-defined]
                               .where(ImportJob.__table__.c.id == job_id)).mappings().one()  # type: ignore[attr-defined]
        return ImportJob.model_validate(dict(row))

    row = await run_in_threadpool(save)
    tasks = _tasks(request)
    task = asyncio.create_task(run_in_threadpool(_run, engine, path, kind, job_id, dry_run,
                                                 actor))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return _public(row)


def _tasks(request: Request) -> set[asyncio.Task[None]]:
    tasks: set[asyncio.Task[None]] | None = getattr(request.app.state, "import_tasks", None)
    if tasks is None:
        tasks = request.app.state.import_tasks = set()
    return tasks


@router.get("/{job_id}", response_model=ImportJobPublic, dependencies=[Depends(require("read"))],
            responses=NOT_FOUND)
def get_import(job_id: JobId, session: SessionDep) -> ImportJobPublic:
    """An import's progress and counts; `report_url` once rows were rejected."""
    row = session.get(ImportJob, job_id)
    if row is None:
        raise HTTPException(404, f"import {job_id!r} does not exist")
    return _public(row)


@router.get("/{job_id}/report", dependencies=[Depends(require("read"))], responses={
    **NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "The rejected rows"}})
def get_report(job_id: JobId, session: SessionDep) -> FileResponse:
    """The CSV of rejected rows: row (as a spreadsheet shows it), column, value, reason, fix."""
    row = session.get(ImportJob, job_id)
    if row is None or not row.report_path or not FilePath(row.report_path).is_file():
        raise HTTPException(404, f"import {job_id!r} has no report (nothing rejected yet)")
    return FileResponse(row.report_path, media_type="text/csv",
                        filename=f"{job_id}-rejected.csv")

"""Staff tasks: list, read, assign, complete, cancel; each change one atomic update."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from tropa.api.deps import SessionDep, require
from tropa.api.errors import ERRORS, ErrorOut
from tropa.api.schemas.common import ID_PATTERN
from tropa.api.schemas.tasks import AssignIn, CompleteIn, TaskPage, TaskPublic, TaskStatus
from tropa.clock import utcnow
from tropa.errors import TaskConflict, TaskNotFound
from tropa.store.task_models import Task
from tropa.tasks import store

router = APIRouter(tags=["tasks"], responses=ERRORS)
MAX_ID = 2**31 - 1  # an INTEGER column on PostgreSQL
READ = [Depends(require("read"))]
WRITE = [Depends(require("tasks:write"))]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[42])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No task has this id"}}
CHANGES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": ErrorOut, "description": "The task is done or cancelled; the detail names "
          "its state"}}


def _public(task: Task) -> TaskPublic:
    return TaskPublic.model_validate(task.model_dump())


def _not_found(exc: TaskNotFound) -> HTTPException:
    return HTTPException(404, str(exc))


@router.get("/v1/tasks", response_model=TaskPage, dependencies=READ)
def list_tasks(session: SessionDep, status: TaskStatus | None = None,
               assignee: Annotated[str | None, Query(max_length=100,
                                                     pattern=r"^[\w.@-]+$")] = None,
               customer_id: Annotated[str | None, Query(max_length=128,
                                                        pattern=ID_PATTERN)] = None,
               after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> TaskPage:
    """Tasks by id, oldest first, filtered by status, assignee and customer."""
    rows = store.listing(session, status=status, assignee=assignee, customer_id=customer_id,
                         after=after, limit=limit)
    return TaskPage(tasks=[_public(t) for t in rows],
                    next_after=rows[-1].id if len(rows) == limit else None)


@router.get("/v1/tasks/{task_id}", response_model=TaskPublic, dependencies=READ,
            responses=NOT_FOUND)
def get_task(task_id: TaskId, session: SessionDep) -> TaskPublic:
    """One task."""
    try:
        return _public(store.get(session, task_id))
    except TaskNotFound as exc:
        raise _not_found(exc) from exc


@router.post("/v1/tasks/{task_id}:assign", response_model=TaskPublic, dependencies=WRITE,
             responses=CHANGES)
def assign_task(task_id: TaskId, body: AssignIn, session: SessionDep) -> TaskPublic:
    """Give an open or assigned task to a staff member."""
    try:
        return _public(store.assign(session, task_id, body.assignee, utcnow()))
    except TaskNotFound as exc:
        raise _not_found(exc) from exc
    except TaskConflict as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/v1/tasks/{task_id}:complete", response_model=TaskPublic, dependencies=WRITE,
             responses=CHANGES)
def complete_task(task_id: TaskId, body: CompleteIn, session: SessionDep) -> TaskPublic:
    """Mark an open or assigned task done; a task already done or cancelled answers 409."""
    try:
        return _public(store.complete(session, task_id, body.by, body.note, utcnow()))
    except TaskNotFound as exc:
        raise _not_found(exc) from exc
    except TaskConflict as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/v1/tasks/{task_id}:cancel", response_model=TaskPublic, dependencies=WRITE,
             responses=CHANGES)
def cancel_task(task_id: TaskId, session: SessionDep) -> TaskPublic:
    """Cancel an open or assigned task."""
    try:
        return _public(store.cancel(session, task_id, utcnow()))
    except TaskNotFound as exc:
        raise _not_found(exc) from exc
    except TaskConflict as exc:
        raise HTTPException(409, str(exc)) from exc

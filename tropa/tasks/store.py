"""Tasks in the database: created once per idempotency key, changed by atomic updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tropa.errors import TaskConflict, TaskNotFound
from tropa.store.db import session_scope
from tropa.store.task_models import OPEN_STATUSES, Task


@dataclass(frozen=True)
class NewTask:
    """What `create_task` stores; the idempotency key is the run's and the step's."""

    idempotency_key: str
    customer_id: str
    journey: str
    workflow_id: str
    step_id: str
    text: str
    assignee: str
    due_at: datetime | None
    notify: list[str]
    created_at: datetime


def create_once(engine: sa.Engine, new: NewTask) -> Task:
    """The task of this key: stored now, or the one an earlier attempt stored."""
    with session_scope(engine) as session:
        found = _by_key(session, new.idempotency_key)
        if found is not None:
            return found
    try:
        with session_scope(engine) as session:
            task = Task(idempotency_key=new.idempotency_key, customer_id=new.customer_id,
                        journey=new.journey, workflow_id=new.workflow_id, step_id=new.step_id,
                        text=new.text, assignee=new.assignee, due_at=new.due_at,
                        notify=list(new.notify),
                        announce_status="pending" if new.notify else "not_requested",
                        created_at=new.created_at)
            session.add(task)
            session.flush()
            session.refresh(task)
            return task
    except IntegrityError:
        # A concurrent attempt of the same step stored it first; that task stands.
        with session_scope(engine) as session:
            found = _by_key(session, new.idempotency_key)
            assert found is not None
            return found


def _by_key(session: Session, key: str) -> Task | None:
    return session.exec(select(Task).where(Task.idempotency_key == key)).first()


def record_announcement(engine: sa.Engine, task_id: int, channel: str,
                        outcome: dict[str, Any], summary: str | None = None) -> None:
    """Keep what announcing on `channel` did, and the task's overall announce status."""
    with session_scope(engine) as session:
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        task.announcements = {**task.announcements, channel: outcome}
        if summary is not None:
            task.announce_status = summary
        session.add(task)


def set_announce_status(engine: sa.Engine, task_id: int, summary: str) -> None:
    """Set the task's overall announce status."""
    with session_scope(engine) as session:
        session.execute(sa.update(Task).where(col(Task.id) == task_id)
                        .values(announce_status=summary))


def get(session: Session, task_id: int) -> Task:
    """The task, or TaskNotFound."""
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


def listing(session: Session, *, status: str | None = None, assignee: str | None = None,
            customer_id: str | None = None, after: int | None = None,
            limit: int = 100) -> Sequence[Task]:
    """Tasks by id, oldest first, filtered; `after` is the last id of the previous page."""
    query = select(Task)
    if status is not None:
        query = query.where(Task.status == status)
    if assignee is not None:
        query = query.where(Task.assignee == assignee)
    if customer_id is not None:
        query = query.where(Task.customer_id == customer_id)
    if after is not None:
        query = query.where(col(Task.id) > after)
    return session.exec(query.order_by(col(Task.id)).limit(limit)).all()


def _change(session: Session, task_id: int, action: str, values: dict[str, Any]) -> Task:
    # One conditional UPDATE: of two people completing the same task, exactly one changes
    # it and the other learns the state it found.
    result = session.execute(
        sa.update(Task).where(col(Task.id) == task_id, col(Task.status).in_(OPEN_STATUSES))
        .values(**values))
    if getattr(result, "rowcount", 0) != 1:
        task = get(session, task_id)
        raise TaskConflict(task_id, task.status, action)
    session.flush()
    session.expire_all()
    return get(session, task_id)


def assign(session: Session, task_id: int, assignee: str, now: datetime) -> Task:
    """Give an open or assigned task to `assignee`."""
    return _change(session, task_id, "assigned",
                   {"assignee": assignee, "status": "assigned", "assigned_at": now})


def complete(session: Session, task_id: int, by: str, note: str | None, now: datetime) -> Task:
    """Mark an open or assigned task done, by whom and with an optional note."""
    return _change(session, task_id, "completed",
                   {"status": "done", "completed_at": now, "completed_by": by, "note": note})


def cancel(session: Session, task_id: int, now: datetime) -> Task:
    """Cancel an open or assigned task."""
    return _change(session, task_id, "cancelled", {"status": "cancelled", "cancelled_at": now})

"""Tasks for staff that journeys create (`create_task`) and people close through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime

TASK_STATUSES = ("open", "assigned", "done", "cancelled")
OPEN_STATUSES = ("open", "assigned")


class Task(SQLModel, table=True):
    """A task for a staff member or a team, created once per run and step."""

    __tablename__ = "tasks"
    __table_args__ = (sa.Index("ix_tasks_status_assignee", "status", "assignee"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=400)
    customer_id: str = Field(index=True, max_length=128)
    journey: str = Field(max_length=200)
    workflow_id: str = Field(max_length=400)
    step_id: str = Field(max_length=400)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    assignee: str = Field(max_length=100)
    status: str = Field(default="open", max_length=16)
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    notify: list[str] = Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))
    announce_status: str = Field(default="pending", max_length=32)
    # channel -> {"status": sent|retrying|no_contact|failed, "detail": ..., "message_id": ...}
    announcements: dict[str, Any] = Field(default_factory=dict,
                                          sa_column=Column(sa.JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    assigned_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_by: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

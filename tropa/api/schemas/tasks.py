"""Staff tasks: the stored task, a page of them, and the bodies of the changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tropa.api.schemas.common import Text

TaskStatus = Literal["open", "assigned", "done", "cancelled"]
StaffName = Field(min_length=1, max_length=100, pattern=r"^[\w.@-]+$", examples=["anna"])


class TaskPublic(BaseModel):
    """A task a journey created for a staff member or team."""

    id: int
    customer_id: str
    journey: str
    workflow_id: str
    step_id: str
    text: str
    assignee: str
    status: TaskStatus
    due_at: datetime | None
    notify: list[str]
    announce_status: str = Field(description="sent, partial, no_contact, unknown_assignee, "
                                 "failed, pending or not_requested")
    announcements: dict[str, Any] = Field(description="Per channel: status and provider id")
    created_at: datetime
    assigned_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    note: str | None
    cancelled_at: datetime | None


class TaskPage(BaseModel):
    """A page of tasks by id; pass `next_after` as `after` for the next page."""

    tasks: list[TaskPublic]
    next_after: int | None


class AssignIn(BaseModel):
    """Who takes the task."""

    model_config = ConfigDict(extra="forbid")

    assignee: str = StaffName


class CompleteIn(BaseModel):
    """Who did the task, and a note."""

    model_config = ConfigDict(extra="forbid")

    by: Text = Field(min_length=1, max_length=200, examples=["anna"])
    note: Text | None = Field(default=None, max_length=4000, examples=["called, order placed"])

"""Runs: listings from Temporal visibility and one run's full status."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tropa.dsl.plan import StepRecord


class RunPublic(BaseModel):
    """A run as listed, with its page in the Temporal Web UI."""

    workflow_id: str
    run_id: str
    journey: str | None
    version: str | None
    customer_id: str | None
    state: str = Field(description="running, completed, exited, cancelled, terminated, failed")
    current_step: str | None
    started_at: datetime | None
    closed_at: datetime | None
    ui_url: str = Field(description="The run in the Temporal Web UI")


class RunPage(BaseModel):
    """One page of runs; pass `next_page_token` back for the next."""

    runs: list[RunPublic]
    next_page_token: str | None


class MessageOut(BaseModel):
    """A message a run sent, from the message log (no contact data)."""

    step_id: str
    channel: str
    category: str
    status: str
    reason: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


class RunDetailPublic(RunPublic):
    """One run: where it is, every step done, every message sent."""

    steps: list[StepRecord] = Field(default_factory=list)
    steps_known: bool = Field(description="False when no worker answered the status query; "
                              "then only the listing fields are current")
    messages: list[MessageOut] = Field(default_factory=list)

"""Broadcast request and response bodies."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from tropa.api.schemas.common import JsonObject, Text
from tropa.broadcasts.progress import Progress
from tropa.clock import utcnow
from tropa.dsl.expressions import check_template
from tropa.steps.control import TIME_OF_DAY
from tropa.steps.send import SendParams

BroadcastStatus = Literal["scheduled", "sending", "paused", "completed", "cancelled", "failed"]
# An instant a little in the past is "now" with a slow clock or network; beyond that the
# client meant something else.
_PAST_SLACK = timedelta(minutes=5)
_FUTURE_MAX = timedelta(days=366)
_TEMPLATES = ("text", "subject", "html")


class StartIn(BaseModel):
    """When the broadcast goes out: exactly one of `now`, `at`, `in_local_time`."""

    model_config = ConfigDict(extra="forbid")

    now: Literal[True] | None = Field(default=None, description="At once")
    at: AwareDatetime | None = Field(default=None, description="At this instant (with a "
                                     "UTC offset); the audience is taken then",
                                     examples=["2026-12-01T10:00:00+03:00"])
    in_local_time: str | None = Field(
        default=None, description="At this time of day (HH:MM) in each customer's own time "
        "zone, at its next occurrence: one wave per zone", examples=["10:00"])

    @field_validator("in_local_time")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not TIME_OF_DAY.match(value):
            raise ValueError(f"'{value}' is not a time of day; write HH:MM, e.g. 10:00")
        return value

    @field_validator("at")
    @classmethod
    def _when(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        now = utcnow()
        if value < now - _PAST_SLACK:
            raise ValueError(f"{value.isoformat()} is in the past; use `now: true` to send "
                             "at once")
        if value > now + _FUTURE_MAX:
            raise ValueError("is more than a year ahead; schedule nearer the time")
        return value

    @model_validator(mode="after")
    def _one(self) -> StartIn:
        given = [k for k in ("now", "at", "in_local_time") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `now: true`, `at: <instant>`, "
                             f"`in_local_time: \"HH:MM\"` (got {', '.join(given) or 'none'})")
        return self

    def stored(self) -> dict[str, Any]:
        """The start as the broadcast row keeps it."""
        if self.at is not None:
            return {"at": self.at.isoformat()}
        if self.in_local_time is not None:
            return {"in_local_time": self.in_local_time}
        return {"now": True}


class BroadcastCreate(BaseModel):
    """A broadcast: who, what (one `send` step's parameters), when, and a holdout."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200, examples=["Black Friday email"])
    audience: JsonObject = Field(description="An audience filter (all/any/not over profile, "
                                 "tags, consent, segment, loyalty, purchases...) or "
                                 "`{\"saved\": \"<name>\"}`",
                                 examples=[{"saved": "loyal"}])
    send: SendParams = Field(description="The parameters of one `send` step (channel, text, "
                             "subject, html, category, quiet_hours...)")
    start: StartIn = Field(default_factory=lambda: StartIn(now=True))
    holdout_percent: float = Field(default=0.0, ge=0, le=99, description="Share of the "
                                   "audience held out (stable per customer and broadcast): "
                                   "they receive nothing and are counted")

    @field_validator("send")
    @classmethod
    def _one_message(cls, value: SendParams) -> SendParams:
        if value.fallback or value.deliver_within is not None:
            raise ValueError("a broadcast sends one message over one channel: remove "
                             "`fallback` and `deliver_within` (use a journey for fallbacks)")
        for name in _TEMPLATES:
            source = getattr(value, name)
            problems = check_template(source) if source else []
            if problems:
                raise ValueError(f"`{name}`: {problems[0]}")
        for index, source in enumerate(value.template_params):
            problems = check_template(source)
            if problems:
                raise ValueError(f"`template_params[{index}]`: {problems[0]}")
        return value


class BroadcastSummary(BaseModel):
    """A broadcast in a list."""

    id: str
    name: str
    status: BroadcastStatus
    channel: str
    start: dict[str, Any]
    starts_at: datetime
    holdout_percent: float
    recipients: int | None = Field(description="Customers in the snapshot; null until taken")
    holdout: int | None
    created_at: datetime
    finished_at: datetime | None


class BroadcastPublic(BroadcastSummary):
    """A broadcast with its audience, message and progress."""

    audience: dict[str, Any]
    send: dict[str, Any]
    workflow_id: str = Field(description="The Broadcast workflow in the Temporal Web UI")
    snapshot_at: datetime | None
    progress: Progress


class BroadcastPage(BaseModel):
    """A page of broadcasts, oldest first; pass `next_after` as `after` for the next."""

    broadcasts: list[BroadcastSummary]
    next_after: str | None

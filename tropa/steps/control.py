"""Control steps: performed in the workflow itself, with timers, conditions and signals.

Each is declared here like an activity step; its `handler` (in `tropa.workflows.control`) is
the workflow code the interpreter dispatches to. Step lists are the parameter fields marked
`x-steps`; the event a step waits for is the parameter named by `listens`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from tropa.dsl.durations import Duration
from tropa.dsl.moments import Moment
from tropa.dsl.triggers import literal_key_problem
from tropa.steps.registry import StepType
from tropa.workflows import control as flow

StepList = list[dict[str, Any]]
_STEPS_SCHEMA: dict[str, JsonValue] = {"type": "array", "items": {"$ref": "#/$defs/step"}}
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Params(BaseModel):
    """Base of step parameters: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class WaitParams(Params):
    duration: Duration = Field(description="How long to wait", examples=["1h", "3d"])


class WaitUntilParams(Params):
    at: str | None = Field(
        default=None,
        description="Local time of day (HH:MM) in the customer's time zone; the next one",
        examples=["10:00"],
    )
    timestamp: Moment | None = Field(
        default=None, description="An absolute moment with its UTC offset"
    )

    @field_validator("at")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None and not TIME_OF_DAY.match(value):
            raise ValueError(f"'{value}' is not a time of day; write HH:MM, e.g. 09:30")
        return value

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("the timestamp needs a UTC offset, e.g. 2026-12-01T10:00:00+03:00")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> WaitUntilParams:
        if (self.at is None) == (self.timestamp is None):
            raise ValueError("give exactly one of `at` (HH:MM local time) or `timestamp`")
        return self


class WaitForParams(Params):
    event: str = Field(description="Event type to wait for", examples=["order.placed"])
    where: str | None = Field(
        default=None,
        description="Condition on the event, e.g. event.data.total > 1000",
        examples=["event.data.total > 1000"],
        json_schema_extra={"x-condition": True},
    )
    timeout: Duration = Field(description="How long to wait before `on_timeout`")
    key: str | None = Field(
        default=None,
        description="In a journey with a trigger `key`: the template that renders this event "
        "to the key of the run waiting for it, where its field differs from the trigger's "
        "(default: the trigger's key template)",
        examples=["{{ event.data.order.id }}"],
        json_schema_extra={"x-template": True},
    )
    on_timeout: StepList = Field(
        default_factory=list,
        description="Steps run when the event does not come in time",
        json_schema_extra={"x-steps": True, **_STEPS_SCHEMA},
    )


    @field_validator("key")
    @classmethod
    def _short_key(cls, value: str | None) -> str | None:
        problem = literal_key_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class BranchParams(Params):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    if_: str = Field(
        alias="if",
        description="Condition, e.g. customer.phone_verified",
        json_schema_extra={"x-condition": True},
    )
    then: StepList = Field(
        default_factory=list,
        description="Steps when the condition holds",
        json_schema_extra={"x-steps": True, **_STEPS_SCHEMA},
    )
    else_: StepList = Field(
        default_factory=list,
        alias="else",
        description="Steps when it does not",
        json_schema_extra={"x-steps": True, **_STEPS_SCHEMA},
    )


class SplitArm(Params):
    name: str = Field(description="Arm name, recorded in the run's status", examples=["a"])
    weight: int = Field(gt=0, description="Relative share of customers")
    steps: StepList = Field(
        default_factory=list,
        description="Steps of this arm",
        json_schema_extra={"x-steps": True, **_STEPS_SCHEMA},
    )


class SplitParams(Params):
    arms: list[SplitArm] = Field(min_length=1, description="Weighted arms")
    holdout: int = Field(
        default=0, ge=0, description="Weight of a holdout that receives nothing (recorded)"
    )

    @model_validator(mode="after")
    def _unique(self) -> SplitParams:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names) or "holdout" in names:
            raise ValueError("arm names must be unique and not `holdout`")
        return self


class ExitParams(Params):
    reason: str = Field(default="exit step", description="Recorded as the run's end reason")


_WAIT_HINT = {"widget": "duration"}

CONTROL_STEPS: tuple[StepType, ...] = (
    StepType(
        name="wait",
        handler=flow.wait,
        params=WaitParams,
        kind="control",
        label="Wait",
        description="Pause the journey for a duration",
        shorthand="duration",
        ui={"icon": "hourglass", "fields": {"duration": _WAIT_HINT}},
        examples=({"wait": "1h"},),
    ),
    StepType(
        name="wait_until",
        handler=flow.wait_until,
        params=WaitUntilParams,
        kind="control",
        label="Wait until",
        description="Pause until a local time of day in the customer's time zone, or a moment",
        shorthand="at",
        ui={"icon": "clock",
            "fields": {"at": {"widget": "time"}, "timestamp": {"widget": "datetime"}}},
        examples=({"wait_until": "10:00"},),
    ),
    StepType(
        name="wait_for",
        handler=flow.wait_for,
        params=WaitForParams,
        kind="control",
        label="Wait for event",
        description="Wait for an event of the customer; run `on_timeout` if it does not come",
        listens="event",
        listen_key="key",
        ui={"icon": "inbox", "fields": {"timeout": _WAIT_HINT, "where": {"widget": "expression"}}},
        examples=({"wait_for": {"event": "order.placed", "timeout": "3d"}},),
    ),
    StepType(
        name="branch",
        handler=flow.branch,
        params=BranchParams,
        kind="control",
        label="Branch",
        description="Take `then` or `else` by a condition on the customer, event or steps",
        ui={"icon": "git-branch", "fields": {"if": {"widget": "expression"}}},
        examples=({"branch": {"if": "customer.phone_verified", "then": [{"wait": "1h"}]}},),
    ),
    StepType(
        name="split",
        handler=flow.split,
        params=SplitParams,
        kind="control",
        label="A/B split",
        description="Send each customer down one weighted arm, stable per customer",
        ui={"icon": "split", "fields": {"holdout": {"widget": "number", "min": 0}}},
        examples=({"split": {"arms": [{"name": "a", "weight": 1}], "holdout": 1}},),
    ),
    StepType(
        name="exit",
        handler=flow.exit_step,
        params=ExitParams,
        kind="control",
        label="Exit",
        description="End the run here",
        shorthand="reason",
        ui={"icon": "stop"},
        examples=({"exit": "bought already"},),
    ),
)

"""The Plan: a compiled journey, JSON-serialisable, the input of every run.

Workflow code imports this module, so it holds only data models and no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Category = Literal["marketing", "service"]
ReEntry = Literal["restart", "ignore", "parallel", "once"]


class RetrySpec(BaseModel):
    """How an activity step is retried; `maximum_attempts` 0 means until it succeeds."""

    initial_interval_seconds: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_seconds: float = 300.0
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] = Field(default_factory=list)


class ActivityCall(BaseModel):
    """How the interpreter performs an activity step: which activity, timeouts, retries."""

    activity: str
    task_queue: str | None = None
    start_to_close_seconds: float = 30.0
    schedule_to_close_seconds: float | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)


class PlanStep(BaseModel):
    """One compiled step with a stable id; nested step lists live in `children`."""

    id: str
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    children: dict[str, list[PlanStep]] = Field(default_factory=dict)
    call: ActivityCall | None = None


class DateTrigger(BaseModel):
    """`trigger: {date: ...}`: a run per customer and occurrence of a date, at a local time."""

    path: str
    offset_days: int = 0
    at: str = "10:00"
    every: Literal["year", "month", "once"] = "year"
    late: Literal["send", "skip"] = "send"


class InactivityTrigger(BaseModel):
    """`trigger: {inactivity: ...}`: a run when a customer has had no such event for `days`."""

    event: str
    days: int
    at: str = "10:00"
    late: Literal["send", "skip"] = "send"


class Trigger(BaseModel):
    """What starts a run: an event type (for date and inactivity triggers the synthetic one
    the sweep makes), an optional condition and a key."""

    event: str
    where: str | None = None
    key: str | None = None
    kind: Literal["event", "date", "inactivity"] = "event"
    date: DateTrigger | None = None
    inactivity: InactivityTrigger | None = None


class ExitRule(BaseModel):
    """An event that ends a run at any point."""

    event: str
    where: str | None = None
    key: str | None = None
    """In a keyed journey, the template that renders the event to the key of the run it
    ends; None: the trigger's key template."""


def exit_listener(index: int) -> str:
    """The name of the `exit_on` rule at `index` as a listener (see `EventIn.listeners`)."""
    return f"exit_on[{index}]"


class Plan(BaseModel):
    """A journey compiled for the interpreter; `version` is the hash of everything else."""

    journey: str
    version: str
    description: str = ""
    category: Category = "marketing"
    re_entry: ReEntry = "restart"
    trigger: Trigger
    exit_on: list[ExitRule] = Field(default_factory=list)
    steps: list[PlanStep]
    event_fields: list[str] | None = None
    """Keys of `event.data` that templates and conditions read; a run is given only these.
    None (plans compiled before this field, or a template reading `event.data` as a whole):
    all of them."""
    step_outputs: list[str] | None = None
    """Keys of `steps` that templates and conditions read; an activity is given only these.
    None: all of them."""

    def walk(self) -> list[PlanStep]:
        """Every step, nested ones included, parents before their children."""
        found: list[PlanStep] = []
        stack = list(reversed(self.steps))
        while stack:
            step = stack.pop()
            found.append(step)
            for children in reversed(list(step.children.values())):
                stack.extend(reversed(children))
        return found


class EventIn(BaseModel):
    """An event as it reaches a run: the trigger, or a signal for `wait_for` and `exit_on`."""

    event_id: str
    type: str
    customer_id: str
    occurred_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    listeners: list[str] | None = None
    """In a keyed journey, the run's listeners this event was routed to by its key: `exit_on`
    rules (`exit_on[0]`) and `wait_for` step ids. None: every listener (unkeyed journeys,
    and signals sent before keyed routing existed, so saved histories replay unchanged)."""

    def reaches(self, listener: str) -> bool:
        """Whether the router meant this event for `listener` of the run."""
        return self.listeners is None or listener in self.listeners

    def as_context(self) -> dict[str, Any]:
        """The event as templates and conditions see it (without routing details)."""
        return self.model_dump(mode="json", exclude={"listeners"})

    def keeping(self, fields: list[str] | None) -> EventIn:
        """This event with only the `data` keys a journey reads (all when None)."""
        if fields is None:
            return self
        wanted = set(fields)
        return self.model_copy(update={"data": {k: v for k, v in self.data.items()
                                                 if k in wanted}})


class RunInput(BaseModel):
    """Everything a JourneyRun needs: the Plan is part of it, so edits never touch runs."""

    plan: Plan
    customer_id: str
    trigger_event: EventIn
    run_key: str | None = None
    """Basis of the run's idempotency keys; None: the first execution's run id. A run
    restarted by a new trigger gets a key of its own, so its sends are new messages."""
    resume: Resume | None = None
    """Where a continued-as-new run picks up; None for a fresh run."""


class StepRecord(BaseModel):
    """A step as shown in a run's status."""

    step_id: str
    type: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    detail: str = ""


class Resume(BaseModel):
    """A run's state carried across continue-as-new: where it is and what it knows."""

    step_id: str | None
    """The step to go on with; the last record is that step's when it was under way."""
    deadline: datetime | None = None
    """When the wait under way ends (wait, wait_until, wait_for)."""
    records: list[StepRecord] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    pending: list[EventIn] = Field(default_factory=list)
    """Events a listener has not looked at yet."""
    exit_from: int = 0
    """Index into `pending` the `exit_on` watcher goes on from."""
    step_from: int | None = None
    """Index into `pending` the `wait_for` under way goes on from."""
    seen_event_ids: list[str] = Field(default_factory=list)
    receipts: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    continued: int = 0


class RunRef(BaseModel):
    """Which run and step an activity works for; the basis of idempotency keys."""

    workflow_id: str
    run_id: str
    journey: str
    version: str
    customer_id: str
    category: Category


class StepCall(BaseModel):
    """The input of every activity step, built-in or from a plugin."""

    run: RunRef
    step_id: str
    step_type: str
    params: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str


class StepResult(BaseModel):
    """What an activity step did: an outcome word and data later steps may use."""

    outcome: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class RunStatus(BaseModel):
    """The answer of the `status` query."""

    journey: str
    version: str
    customer_id: str
    state: Literal["running", "completed", "exited", "failed"]
    current_step: str | None
    steps: list[StepRecord]
    continued: int = 0
    """How many times the run continued as new to keep its history small."""
    run_key: str | None = None
    """The middle part of the run's message idempotency keys (`<workflow>/<key>/<step>`)."""


RunInput.model_rebuild()

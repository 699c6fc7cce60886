"""The `create_task` step: a task for a staff member or team, stored once and announced.

The task text is rendered here, in the activity, and stays in the database: the step's
result (which goes into the run's history) holds only the task id and due time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import Field
from temporalio import activity

from tropa.dsl.durations import Duration, parse_duration
from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.steps.control import Params
from tropa.steps.kit import render_param, template_context
from tropa.steps.registry import StepType, WorkerDeps
from tropa.store.task_models import Task
from tropa.tasks.announce import announce
from tropa.tasks.store import NewTask, create_once

NotifyChannel = Literal["email", "sms", "telegram"]


class CreateTaskParams(Params):
    text: str = Field(min_length=1, max_length=4000,
                      description="What to do (Jinja2: customer, event, steps, journey)",
                      examples=["Call {{ customer.first_name }} about cart "
                                "{{ event.data.cart_id }}"],
                      json_schema_extra={"x-template": True})
    assignee: str = Field(min_length=1, max_length=100, pattern=r"^[\w.@-]+$",
                          description="Staff member or team, a name of the staff directory "
                          "(TROPA_TASKS_ASSIGNEES)", examples=["manager"])
    due_in: Duration | None = Field(default=None, description="Due this long after creation",
                                    examples=["4h"])
    notify: list[NotifyChannel] = Field(
        default_factory=lambda: list[NotifyChannel](["email"]), max_length=3,
        description="Channels that announce the task to the assignee; [] announces nothing",
        examples=[["email", "telegram"]])


def perform(deps: WorkerDeps, call: StepCall, now: datetime) -> StepResult:
    """Store the task once for this run and step, then announce it."""
    params = CreateTaskParams.model_validate(call.params)
    text = render_param(params.text, template_context(deps.engine, call), field="text")
    task = create_once(deps.engine, NewTask(
        idempotency_key=call.idempotency_key, customer_id=call.run.customer_id,
        journey=call.run.journey, workflow_id=call.run.workflow_id, step_id=call.step_id,
        text=text, assignee=params.assignee,
        due_at=now + parse_duration(params.due_in) if params.due_in else None,
        notify=list(dict.fromkeys(params.notify)), created_at=now))
    status = announce(deps.engine, deps.adapters, deps.settings.tasks.assignees, task)
    return StepResult(outcome="created", detail=f"task {task.id}, announce {status}",
                      data=_data(task))


def _data(task: Task) -> dict[str, object]:
    return {"task_id": task.id, "due_at": task.due_at.isoformat() if task.due_at else None}


def create_task_activity(deps: WorkerDeps) -> Callable[[StepCall], StepResult]:
    """The activity performing `create_task`."""

    @activity.defn(name="tropa.create_task")
    def create_task(call: StepCall) -> StepResult:
        # The run's clock, as loyalty steps use: due times follow a simulated clock too.
        return perform(deps, call, activity.info().current_attempt_scheduled_time)

    return create_task


STEP = StepType(
    name="create_task",
    params=CreateTaskParams,
    kind="activity",
    label="Create task",
    description="Create a task for a staff member or team and announce it to them",
    call=ActivityCall(
        activity="tropa.create_task",
        start_to_close_seconds=60,
        # An unavailable provider retries for up to six hours; then the run fails with the
        # step and the reason, the task itself already stored.
        schedule_to_close_seconds=6 * 3600,
        retry=RetrySpec(maximum_interval_seconds=300, maximum_attempts=0,
                        non_retryable_error_types=["TemplateFailed"]),
    ),
    activity=create_task_activity,
    ui={"icon": "clipboard-check", "fields": {"text": {"widget": "template", "rows": 4},
                                              "due_in": {"widget": "duration"},
                                              "notify": {"widget": "multiselect"}}},
    examples=({"create_task": {"text": "Call {{ customer.first_name }} about the cart",
                               "assignee": "manager", "due_in": "4h"}},),
)

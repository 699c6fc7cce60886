"""Workflow code of the step types: the handlers the registry declares with each step type.

A handler gets the run (the `Runtime` below, which JourneyRun implements) and the step, and
returns (outcome, detail, steps to run next). Handlers are workflow code: deterministic, no
I/O; timers, conditions and signals only, and activities for everything that needs the world.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from tropa.dsl.durations import parse_duration
    from tropa.dsl.plan import EventIn, PlanStep, RunRef, StepCall, StepResult
    from tropa.workflows.inbox import STEP as STEP_LISTENER
    from tropa.workflows.inbox import Inbox
    from tropa.workflows.inputs import NextLocalTimeInput
    from tropa.workflows.options import activity_options
    from tropa.workflows.sending import Sender

Done = tuple[str, str, list[PlanStep]]
# Local activities read the customer: retried for an hour at most, then the step fails
# with its reason (see JourneyRun._step) instead of the run retrying for ever.
LOCAL: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=30),
                         "schedule_to_close_timeout": timedelta(hours=1),
                         "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1))}


class RunExit(Exception):
    """Ends the run early: an `exit` step, a holdout, or an `exit_on` event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Runtime(Protocol):
    """What a handler may use of the run performing it."""

    inbox: Inbox
    sender: Sender
    versioned: bool
    """True when the run started under the current interpreter (`workflow.patched`)."""

    def ref(self) -> RunRef: ...
    def context(self) -> dict[str, Any]: ...
    def remember(self, step: PlanStep, data: dict[str, Any]) -> None: ...
    def finish_current(self, outcome: str, detail: str) -> None: ...
    def exit(self, reason: str) -> NoReturn: ...
    def resumed_deadline(self, step: PlanStep) -> datetime | None: ...
    async def holds(self, condition: str | None, event: EventIn | None,
                    label: str | None = None) -> bool: ...
    async def pause(self, step: PlanStep, until: datetime, summary: str,
                    wake: Callable[[], bool] | None = None) -> bool: ...


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def wait(run: Runtime, step: PlanStep) -> Done:
    duration = step.params["duration"]
    until = run.resumed_deadline(step) or workflow.now() + parse_duration(duration)
    await run.pause(step, until, f"{step.id}: {duration}")
    return "waited", duration, []


async def wait_until(run: Runtime, step: PlanStep) -> Done:
    target = run.resumed_deadline(step)
    if target is None and step.params.get("timestamp"):
        target = datetime.fromisoformat(step.params["timestamp"])
    elif target is None:
        target = await workflow.execute_local_activity(
            "tropa.next_local_time",
            NextLocalTimeInput(customer_id=run.ref().customer_id, at=step.params["at"],
                               after=workflow.now()),
            result_type=datetime, summary=f"{step.id}: next {step.params['at']} local",
            **LOCAL,
        )
    await run.pause(step, target, f"{step.id}: until {_at(target)}")
    return "waited", target.isoformat(), []


async def wait_for(run: Runtime, step: PlanStep) -> Done:
    params = step.params
    deadline = run.resumed_deadline(step) or (
        workflow.now() + parse_duration(params["timeout"]))
    summary = f"{step.id}: wait_for {params['event']} until {_at(deadline)}"
    seen = run.inbox.open(STEP_LISTENER)
    try:
        while True:
            def arrived(seen: int = seen) -> bool:
                return run.inbox.end() > seen

            if not await run.pause(step, deadline, summary, wake=arrived):
                run.remember(step, {"received": False})
                return "timed_out", params["timeout"], step.children.get("on_timeout", [])
            batch = run.inbox.since(seen)
            for event in batch:
                if event.type == params["event"] and event.reaches(step.id) and \
                        await run.holds(params.get("where"), event):
                    run.remember(step, {"received": True, "event": event.as_context()})
                    return "received", event.event_id, []
            # Events that came while conditions were evaluated are looked at next round.
            seen = seen + len(batch) if run.versioned else run.inbox.end()
            run.inbox.advance(STEP_LISTENER, seen)
    finally:
        run.inbox.close(STEP_LISTENER)


async def branch(run: Runtime, step: PlanStep) -> Done:
    taken = "then" if await run.holds(step.params["if"], None) else "else"
    run.remember(step, {"taken": taken})
    return taken, step.params["if"], step.children.get(taken, [])


async def split(run: Runtime, step: PlanStep) -> Done:
    arms = step.params["arms"]
    total = sum(a["weight"] for a in arms) + step.params.get("holdout", 0)
    # A hash, not workflow.random(): the same customer lands in the same arm in every
    # run of this journey step, which keeps A/B results clean.
    ref = run.ref()
    seed = f"{ref.journey}/{step.id}/{ref.customer_id}".encode()
    point = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % total
    for index, arm in enumerate(arms):
        if point < arm["weight"]:
            run.remember(step, {"arm": arm["name"]})
            return f"arm:{arm['name']}", "", step.children.get(f"arms[{index}].steps", [])
        point -= arm["weight"]
    run.remember(step, {"arm": "holdout"})
    run.finish_current("holdout", "in the holdout group: receives nothing")
    return run.exit("holdout")


async def exit_step(run: Runtime, step: PlanStep) -> Done:
    run.finish_current("exited", step.params.get("reason", ""))
    return run.exit(step.params.get("reason", "exit step"))


async def send(run: Runtime, step: PlanStep) -> Done:
    # No `workflow.patched` here: the first phase schedules the same activity type at the
    # same position as the old single-activity send, and Sender reads an old answer
    # (accepted, suppressed, or a MessageInvalid failure) as a final one, so old histories
    # replay.
    outcome, detail, data = await run.sender.send(step, run.ref(), run.context())
    run.remember(step, {"outcome": outcome, **data})
    return outcome, detail, []


async def activity_step(run: Runtime, step: PlanStep) -> Done:
    """An activity step without a handler of its own: one call of its declared activity."""
    call = step.call
    if call is None:
        raise ApplicationError(f"step type {step.type} has no activity", non_retryable=True)
    ref = run.ref()
    try:
        result: StepResult = await workflow.execute_activity(
            call.activity,
            StepCall(run=ref, step_id=step.id, step_type=step.type, params=step.params,
                     context=run.context(),
                     idempotency_key=f"{ref.workflow_id}/{ref.run_id}/{step.id}"),
            result_type=StepResult, summary=f"{step.id}: {step.type}",
            **activity_options(call),
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            outcome = "cancelled" if (cause.type or "").startswith("MessageInvalid") else (
                "failed")
            return outcome, f"{cause.type}: {cause.message}", []
        raise
    run.remember(step, {"outcome": result.outcome, **result.data})
    return result.outcome, result.detail, []

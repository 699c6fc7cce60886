"""JourneyRun: interprets a Plan for one customer.

The Plan is the run's input, so publishing a new version never changes runs in flight.
Waits are timers, `wait_for` is a condition with a timeout, and everything that touches
the world (sends, customer updates, reading the customer) happens in activities.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from tropa.delivery.models import ReceiptSignal
    from tropa.dsl.durations import parse_duration
    from tropa.dsl.plan import (
        EventIn,
        ExitRule,
        PlanStep,
        RunInput,
        RunRef,
        RunStatus,
        StepCall,
        StepRecord,
        StepResult,
    )
    from tropa.workflows import search_attributes as sa
    from tropa.workflows.inputs import EvaluateInput, NextLocalTimeInput
    from tropa.workflows.sending import Sender

# Local activities read the customer: retried for an hour at most, then the step fails
# with its reason (see `_step`) instead of the run retrying for ever.
LOCAL = {"start_to_close_timeout": timedelta(seconds=30),
         "schedule_to_close_timeout": timedelta(hours=1),
         "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1))}


class _Exit(Exception):
    """Ends the run early: an `exit` step, a holdout, or an `exit_on` event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@workflow.defn(name="JourneyRun")
class JourneyRun:
    """One customer's trip through one journey version."""

    def __init__(self) -> None:
        self._input: RunInput | None = None
        self._events: list[EventIn] = []
        self._records: list[StepRecord] = []
        self._current: str | None = None
        self._state = "running"
        self._outputs: dict[str, Any] = {}
        self._stopping = False
        self._sender = Sender()

    @workflow.signal(name="event")
    def event(self, event: EventIn) -> None:
        """An event of this customer: for `wait_for` steps and `exit_on` rules."""
        if all(e.event_id != event.event_id for e in self._events):
            self._events.append(event)

    @workflow.signal(name="receipt")
    def receipt(self, receipt: ReceiptSignal) -> None:
        """A provider's delivery receipt for a message of this run."""
        self._sender.receipt(receipt)

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        """Current step and every step done, with its time and outcome."""
        assert self._input is not None
        return RunStatus(
            journey=self._input.plan.journey,
            version=self._input.plan.version,
            customer_id=self._input.customer_id,
            state=self._state,  # type: ignore[arg-type]
            current_step=self._current,
            steps=self._records,
        )

    @workflow.run
    async def run(self, inp: RunInput) -> RunStatus:
        """Walk the Plan until its end, an `exit`, or an `exit_on` event."""
        self._input = inp
        body = asyncio.ensure_future(self._walk(inp.plan.steps))
        watcher = asyncio.ensure_future(self._watch_exit(inp.plan.exit_on))
        try:
            await workflow.wait([body, watcher], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Cancelled by an operator: stop the steps too, record it, end as cancelled.
            watcher.cancel()
            await self._stop(body, "cancelled", "cancelled by an operator")
            self._state = "exited"
            self._current = None
            workflow.upsert_search_attributes([sa.STEP.value_set("end:cancelled")])
            raise
        if watcher.done() and not body.done():
            await self._stop(body, "exited", watcher.result())
            self._state = "exited"
        else:
            watcher.cancel()
            try:
                body.result()
                self._state = "completed"
            except _Exit as stop:
                self._state = "exited"
                workflow.logger.info("journey run exited: %s", stop.reason)
        self._current = None
        workflow.upsert_search_attributes([sa.STEP.value_set(f"end:{self._state}")])
        return self.status()

    async def _watch_exit(self, rules: list[ExitRule]) -> str:
        seen = 0
        while True:
            await workflow.wait_condition(lambda seen=seen: len(self._events) > seen)
            for event in self._events[seen:]:
                for rule in rules:
                    if rule.event == event.type and await self._holds(rule.where, event):
                        return f"exit_on {event.type}"
            seen = len(self._events)

    async def _stop(self, body: asyncio.Future[None], outcome: str, detail: str) -> None:
        """End the steps: cancel what is in flight and let no further step begin.

        An activity that completes while its cancellation is being delivered returns its
        result instead of raising, so cancelling the task alone would let the walk go on;
        the flag stops it at the next step boundary."""
        self._stopping = True
        body.cancel()
        self._finish_current(outcome, detail)
        await asyncio.gather(body, return_exceptions=True)

    async def _walk(self, steps: list[PlanStep]) -> None:
        for step in steps:
            if self._stopping:
                return
            await self._step(step)

    async def _step(self, step: PlanStep) -> None:
        self._current = step.id
        record = StepRecord(step_id=step.id, type=step.type, started_at=workflow.now())
        self._records.append(record)
        workflow.upsert_search_attributes([sa.STEP.value_set(step.id)])
        handler = getattr(self, f"_do_{step.type}", None)
        try:
            outcome, detail, children = (
                await handler(step) if handler is not None else await self._activity(step)
            )
        except ActivityError as err:
            if self._stopping or isinstance(err.cause, CancelledError):
                raise
            # The run ends failed, and its status says where and why.
            reason = _failure_reason(err)
            record.outcome, record.detail, record.finished_at = "failed", reason, workflow.now()
            self._state = "failed"
            raise ApplicationError(f"step {step.id} failed: {reason}", type="StepFailed",
                                   non_retryable=True) from err
        record.outcome, record.detail, record.finished_at = outcome, detail, workflow.now()
        if children:
            await self._walk(children)

    def _finish_current(self, outcome: str, detail: str) -> None:
        if self._records and self._records[-1].finished_at is None:
            last = self._records[-1]
            last.outcome, last.detail, last.finished_at = outcome, detail, workflow.now()

    # Control steps return (outcome, detail, steps to run next).

    async def _do_wait(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        await workflow.sleep(parse_duration(step.params["duration"]))
        return "waited", step.params["duration"], []

    async def _do_wait_until(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        if step.params.get("timestamp"):
            target = datetime.fromisoformat(step.params["timestamp"])
        else:
            target = await workflow.execute_local_activity(
                "tropa.next_local_time",
                NextLocalTimeInput(customer_id=self._run().customer_id,
                                   at=step.params["at"], after=workflow.now()),
                result_type=datetime,
                **LOCAL,  # type: ignore[arg-type]
            )
        delay = target - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)
        return "waited", target.isoformat(), []

    async def _do_wait_for(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        seen = len(self._events)
        deadline = workflow.now() + parse_duration(step.params["timeout"])
        while True:
            remaining = deadline - workflow.now()
            try:
                if remaining <= timedelta(0):
                    raise TimeoutError
                await workflow.wait_condition(lambda seen=seen: len(self._events) > seen,
                                              timeout=remaining)
            except TimeoutError:
                self._remember(step, {"received": False})
                return "timed_out", step.params["timeout"], step.children.get("on_timeout", [])
            for event in self._events[seen:]:
                if event.type == step.params["event"] and await self._holds(
                    step.params.get("where"), event
                ):
                    self._remember(step, {"received": True, "event": event.model_dump(mode="json")})
                    return "received", event.event_id, []
            seen = len(self._events)

    async def _do_branch(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        taken = "then" if await self._holds(step.params["if"], None) else "else"
        self._remember(step, {"taken": taken})
        return taken, step.params["if"], step.children.get(taken, [])

    async def _do_split(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        arms = step.params["arms"]
        total = sum(a["weight"] for a in arms) + step.params.get("holdout", 0)
        # A hash, not workflow.random(): the same customer lands in the same arm in every
        # run of this journey step, which keeps A/B results clean.
        seed = f"{self._run().journey}/{step.id}/{self._run().customer_id}".encode()
        point = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % total
        for index, arm in enumerate(arms):
            if point < arm["weight"]:
                self._remember(step, {"arm": arm["name"]})
                return f"arm:{arm['name']}", "", step.children.get(f"arms[{index}].steps", [])
            point -= arm["weight"]
        self._remember(step, {"arm": "holdout"})
        self._finish_current("holdout", "in the holdout group: receives nothing")
        raise _Exit("holdout")

    async def _do_send(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        # No `workflow.patched` here (it would add TemporalChangeVersion to every run's search
        # attributes): the first phase schedules the same activity type at the same position
        # as the old single-activity send, and Sender reads an old answer (accepted,
        # suppressed, or a MessageInvalid failure) as a final one, so old histories replay.
        outcome, detail, data = await self._sender.send(step, self._run(), self._context())
        self._remember(step, {"outcome": outcome, **data})
        return outcome, detail, []

    async def _do_exit(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        self._finish_current("exited", step.params.get("reason", ""))
        raise _Exit(step.params.get("reason", "exit step"))

    async def _activity(self, step: PlanStep) -> tuple[str, str, list[PlanStep]]:
        call = step.call
        if call is None:
            raise ApplicationError(f"step type {step.type} has no activity", non_retryable=True)
        retry = call.retry
        run = self._run()
        try:
            result: StepResult = await workflow.execute_activity(
                call.activity,
                StepCall(
                    run=run,
                    step_id=step.id,
                    step_type=step.type,
                    params=step.params,
                    context=self._context(),
                    idempotency_key=f"{run.workflow_id}/{run.run_id}/{step.id}",
                ),
                result_type=StepResult,
                task_queue=call.task_queue,
                start_to_close_timeout=timedelta(seconds=call.start_to_close_seconds),
                schedule_to_close_timeout=(
                    timedelta(seconds=call.schedule_to_close_seconds)
                    if call.schedule_to_close_seconds else None
                ),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=retry.initial_interval_seconds),
                    backoff_coefficient=retry.backoff_coefficient,
                    maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
                    maximum_attempts=retry.maximum_attempts,
                    non_retryable_error_types=retry.non_retryable_error_types or None,
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                outcome = "cancelled" if (cause.type or "").startswith("MessageInvalid") else (
                    "failed")
                return outcome, f"{cause.type}: {cause.message}", []
            raise
        self._remember(step, {"outcome": result.outcome, **result.data})
        return result.outcome, result.detail, []

    async def _holds(self, condition: str | None, event: EventIn | None) -> bool:
        if not condition:
            return True
        context = self._context()
        if event is not None:
            context["event"] = event.model_dump(mode="json")
        return bool(await workflow.execute_local_activity(
            "tropa.evaluate",
            EvaluateInput(customer_id=self._run().customer_id, expression=condition,
                          context=context),
            result_type=bool,
            **LOCAL,  # type: ignore[arg-type]
        ))

    def _remember(self, step: PlanStep, data: dict[str, Any]) -> None:
        self._outputs[step.id] = data
        self._outputs[step.type] = data

    def _context(self) -> dict[str, Any]:
        inp = self._input
        assert inp is not None
        return {
            "event": inp.trigger_event.model_dump(mode="json"),
            "steps": dict(self._outputs),
            "journey": {"name": inp.plan.journey, "version": inp.plan.version},
        }

    def _run(self) -> RunRef:
        inp = self._input
        assert inp is not None
        info = workflow.info()
        return RunRef(
            workflow_id=info.workflow_id,
            run_id=info.first_execution_run_id,
            journey=inp.plan.journey,
            version=inp.plan.version,
            customer_id=inp.customer_id,
            category=inp.plan.category,
        )


def _failure_reason(err: ActivityError) -> str:
    """What made an activity fail for good, in words for the run's status: the error's type
    and first line only (later lines of a database error carry the statement's values)."""
    cause = err.cause
    if isinstance(cause, ActivityTimeout):
        what = f"timed out ({cause.type.name.lower() if cause.type is not None else 'timeout'})"
    elif isinstance(cause, ApplicationError):
        first = cause.message.splitlines()[0][:200] if cause.message else ""
        what = f"{cause.type or 'error'}: {first}"
    else:
        what = type(cause).__name__ if cause is not None else "error"
    if err.retry_state == RetryState.TIMEOUT or isinstance(cause, ActivityTimeout):
        return f"{err.activity_type or 'activity'} did not finish in time; last error: {what}"
    return what

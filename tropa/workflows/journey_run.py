"""JourneyRun: interprets a Plan for one customer.

The Plan is the run's input, so publishing a new version never changes runs in flight.
Each step is performed by the handler its step type declares in the registry
(`tropa.workflows.control`); everything that touches the world happens in activities.

A run stays small: it keeps only the events a listener may still look at, recognises
duplicates in constant time, and continues as new when Temporal suggests it (or its history
passes `HISTORY_LIMIT`), carrying its place in the plan, its step records, outputs, pending
events and receipts. A new trigger of a `re_entry: restart` journey arrives as the `restart`
signal: the run lets a send in flight finish (or records it cancelled), stops at the step
boundary and continues as new from the start with the new trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from tropa.delivery.models import ReceiptSignal
    from tropa.dsl.plan import (
        EventIn,
        ExitRule,
        PlanStep,
        Resume,
        RunInput,
        RunRef,
        RunStatus,
        StepRecord,
        exit_listener,
    )
    from tropa.steps.builtin import registry
    from tropa.steps.registry import StepHandler, StepType
    from tropa.workflows import control
    from tropa.workflows import search_attributes as sa
    from tropa.workflows.failures import failure_reason
    from tropa.workflows.inbox import EXIT, STEP, Inbox
    from tropa.workflows.inputs import EvaluateInput
    from tropa.workflows.sending import Sender

PATCH = "tropa-interpreter-3"
"""The interpreter revision that dispatches through the registry, lets conditions that cannot
be evaluated count as false, continues as new, restarts gracefully and forgets ActiveRun rows.
Runs started before it replay on the old command sequence (see docs/extending.md)."""
HISTORY_LIMIT = 2500
"""Continue as new past this many history events, even if the server does not suggest it
(its own suggestion comes at 4,096 events by default; a burst of signals handled in one go
may add several hundred events before the run gets to continue)."""
STOP_GRACE = timedelta(minutes=1)
"""How long a run ending early (exit_on, restart) lets an activity step in flight finish."""
MAX_NOTES = 3


def _declared(step_type: str) -> StepType | None:
    """The step type as the registry declares it. The worker builds the registry before any
    workflow runs; a replayer may not have, so its imports pass through the sandbox."""
    with workflow.unsafe.imports_passed_through():
        return registry().get(step_type)


@workflow.defn(name="JourneyRun")
class JourneyRun:
    """One customer's trip through one journey version."""

    def __init__(self) -> None:
        self._input: RunInput | None = None
        self.inbox = Inbox()
        self._records: list[StepRecord] = []
        self._current: str | None = None
        self._current_kind = "control"
        self._state: Literal["running", "completed", "exited", "failed"] = "running"
        self._outputs: dict[str, Any] = {}
        self._notes: list[str] = []
        self._stopping = False
        self._restart_to: RunInput | None = None
        self._resume: Resume | None = None
        self._continued = 0
        self.sender = Sender()
        self.versioned = False

    @workflow.signal(name="event")
    def event(self, event: EventIn) -> None:
        """An event of this customer: for `wait_for` steps and `exit_on` rules."""
        self.inbox.add(event)

    @workflow.signal(name="receipt")
    def receipt(self, receipt: ReceiptSignal) -> None:
        """A provider's delivery receipt for a message of this run."""
        self.sender.receipt(receipt)

    @workflow.signal(name="restart")
    def restart(self, inp: RunInput) -> None:
        """A new trigger of a `re_entry: restart` journey: stop here, start over with it.

        The router sends it with signal-with-start, so a run that has just begun receives
        its own trigger too: that (and any repeated event) is ignored."""
        own = self._input.trigger_event.event_id if self._input is not None else None
        if inp.trigger_event.event_id != own:
            self._restart_to = inp

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        """Current step and every step done, with its time and outcome."""
        assert self._input is not None
        return RunStatus(
            journey=self._input.plan.journey,
            version=self._input.plan.version,
            customer_id=self._input.customer_id,
            state=self._state,
            current_step=self._current,
            steps=self._records,
            continued=self._continued,
            run_key=self.ref().run_id,
        )

    @workflow.run
    async def run(self, inp: RunInput) -> RunStatus:
        """Walk the Plan until its end, an `exit`, an `exit_on` event or a restart."""
        self._input = inp
        if self._restart_to is not None and \
                self._restart_to.trigger_event.event_id == inp.trigger_event.event_id:
            self._restart_to = None  # signal-with-start: the run's own trigger, signalled first
        self.versioned = workflow.patched(PATCH)
        self._restore(inp.resume)
        if not inp.plan.exit_on:
            self.inbox.close(EXIT)
        body = asyncio.ensure_future(self._walk(inp.plan.steps, self._resume_at()))
        watcher = asyncio.ensure_future(self._watch_exit(inp.plan.exit_on))
        tasks = [body, watcher]
        if self.versioned:
            tasks.append(asyncio.ensure_future(
                workflow.wait_condition(lambda: self._restart_to is not None)))
        try:
            await workflow.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Cancelled by an operator: stop the steps too, record it, end as cancelled.
            for task in tasks[1:]:
                task.cancel()
            await self._stop(body, "cancelled", "cancelled by an operator")
            self._state = "exited"
            self._current = None
            workflow.upsert_search_attributes([sa.STEP.value_set("end:cancelled")])
            await self._forget()
            raise
        for task in tasks[2:]:
            task.cancel()
        if self._restart_to is not None and not body.done():
            watcher.cancel()
            await self._restart(body)
        if watcher.done() and not body.done():
            await self._stop_gracefully(body, "exited", watcher.result())
            self._state = "exited"
        else:
            watcher.cancel()
            try:
                body.result()
                self._state = "completed"
            except control.RunExit as stop:
                self._state = "exited"
                workflow.logger.info("journey run exited: %s", stop.reason)
        self._current = None
        if self._restart_to is not None:
            self._continue_with(self._restart_to)  # a trigger came as the run was ending
        workflow.upsert_search_attributes([sa.STEP.value_set(f"end:{self._state}")])
        await self._forget()
        return self.status()

    # -- walking the plan ---------------------------------------------------------------------

    async def _walk(self, steps: list[PlanStep], resume: str | None = None) -> None:
        start = 0
        if resume is not None:
            for index, step in enumerate(steps):
                if resume == step.id:
                    start = index
                    break
                if resume.startswith(step.id + "/"):
                    # Inside this step's children: finish that list, then go on after it.
                    key = resume[len(step.id) + 1:].split("/", 1)[0]
                    await self._walk(step.children.get(key, []), resume)
                    start = index + 1
                    break
        for step in steps[start:]:
            if self._stopping:
                return
            if self._due():
                self._continue_as_new(step.id, None)
            await self._step(step)

    async def _step(self, step: PlanStep) -> None:
        last = self._records[-1] if self._records else None
        self._current = step.id
        declared = _declared(step.type)
        self._current_kind = declared.kind if declared is not None else "activity"
        if last is not None and last.step_id == step.id and last.finished_at is None:
            record = last  # resumed after continue-as-new
        else:
            record = StepRecord(step_id=step.id, type=step.type, started_at=workflow.now())
            self._records.append(record)
            self._notes = []
            workflow.upsert_search_attributes([sa.STEP.value_set(step.id)])
        try:
            outcome, detail, children = await self._handler(step)(self, step)
        except ActivityError as err:
            if self._stopping or isinstance(err.cause, CancelledError):
                raise
            # The run ends failed, and its status says where and why.
            reason = failure_reason(err)
            record.outcome, record.detail, record.finished_at = "failed", reason, workflow.now()
            self._state = "failed"
            raise ApplicationError(f"step {step.id} failed: {reason}", type="StepFailed",
                                   non_retryable=True) from err
        record.outcome, record.detail = outcome, self._with_notes(detail)
        record.finished_at = workflow.now()
        if children:
            await self._walk(children)

    def _handler(self, step: PlanStep) -> StepHandler:
        declared = _declared(step.type)
        if declared is not None and declared.handler is not None:
            return declared.handler
        return control.activity_step

    async def _watch_exit(self, rules: list[ExitRule]) -> str:
        if not rules:
            await workflow.wait_condition(lambda: False)
        seen = self.inbox.open(EXIT)
        while True:
            def arrived(seen: int = seen) -> bool:
                return self.inbox.end() > seen

            await workflow.wait_condition(arrived)
            batch = self.inbox.since(seen)
            for event in batch:
                for index, rule in enumerate(rules):
                    # In a keyed journey the router names the rules whose key matched this
                    # run; an event of another order or cart passes this run by.
                    if rule.event == event.type and event.reaches(exit_listener(index)) and \
                            await self.holds(rule.where, event, label=f"exit_on {rule.event}"):
                        return f"exit_on {event.type}"
            seen = seen + len(batch) if self.versioned else self.inbox.end()
            self.inbox.advance(EXIT, seen)

    # -- stopping, restarting, continuing -----------------------------------------------------

    async def _stop(self, body: asyncio.Future[None], outcome: str, detail: str) -> None:
        """End the steps: cancel what is in flight and let no further step begin.

        An activity that completes while its cancellation is being delivered returns its
        result instead of raising, so cancelling the task alone would let the walk go on;
        the flag stops it at the next step boundary."""
        self._stopping = True
        body.cancel()
        self.finish_current(outcome, detail)
        await asyncio.gather(body, return_exceptions=True)

    async def _stop_gracefully(self, body: asyncio.Future[None], outcome: str,
                               detail: str) -> None:
        """Like `_stop`, but a send (or another activity step) in flight may finish first,
        for up to STOP_GRACE; waits are cut at once. Runs of older revisions stop at once."""
        if not self.versioned:
            await self._stop(body, outcome, detail)
            return
        self._stopping = True
        if self._current_kind == "activity":
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(body.done, timeout=STOP_GRACE,
                                              timeout_summary="stop: let the step finish")
        if not body.done():
            await self._stop(body, outcome, detail)
        elif self._records:
            last = self._records[-1]
            last.detail = "; ".join(p for p in (last.detail, f"then {detail}") if p)

    async def _restart(self, body: asyncio.Future[None]) -> NoReturn:
        """Stop gracefully for a new trigger, then continue as new with it."""
        new = self._restart_to
        assert new is not None
        await self._stop_gracefully(body, "cancelled",
                                    f"restarted by event {new.trigger_event.event_id}")
        self._state = "exited"
        self._current = None
        workflow.upsert_search_attributes([sa.STEP.value_set("end:restarted")])
        self._continue_with(new)

    def _continue_with(self, new: RunInput) -> NoReturn:
        """A fresh run of the new trigger under this workflow id, with a key of its own."""
        plan = new.plan
        workflow.continue_as_new(
            RunInput(plan=plan, customer_id=new.customer_id, trigger_event=new.trigger_event,
                     run_key=str(workflow.uuid4())),
            memo={sa.TRIGGER_MEMO: new.trigger_event.event_id},
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.JOURNEY, plan.journey),
                SearchAttributePair(sa.CUSTOMER, new.customer_id),
                SearchAttributePair(sa.VERSION, plan.version),
                SearchAttributePair(sa.STEP, "start"),
            ]),
        )

    def _due(self) -> bool:
        """Whether the run should continue as new now (never in runs of older revisions)."""
        if not self.versioned:
            return False
        info = workflow.info()
        return info.is_continue_as_new_suggested() or \
            info.get_current_history_length() >= HISTORY_LIMIT

    def _continue_as_new(self, step_id: str, deadline: datetime | None) -> NoReturn:
        inp = self._input
        assert inp is not None
        pending, cursors, seen = self.inbox.export()
        resume = Resume(
            step_id=step_id, deadline=deadline, records=self._records, outputs=self._outputs,
            pending=pending, exit_from=cursors.get(EXIT, 0), step_from=cursors.get(STEP),
            seen_event_ids=seen,
            receipts={k: v.model_dump(mode="json") for k, v in self.sender.receipts.items()},
            notes=self._notes, continued=self._continued + 1)
        workflow.continue_as_new(RunInput(plan=inp.plan, customer_id=inp.customer_id,
                                          trigger_event=inp.trigger_event,
                                          run_key=self.ref().run_id, resume=resume))

    def _restore(self, resume: Resume | None) -> None:
        if resume is None:
            return
        self._resume = resume
        self._records = list(resume.records)
        self._outputs = dict(resume.outputs)
        self._notes = list(resume.notes)
        self._continued = resume.continued
        cursors = {EXIT: resume.exit_from}
        if resume.step_from is not None:
            cursors[STEP] = resume.step_from
        self.inbox.restore(resume.pending, cursors, resume.seen_event_ids)
        self.sender.receipts.update(
            {k: ReceiptSignal.model_validate(v) for k, v in resume.receipts.items()})

    def _resume_at(self) -> str | None:
        return self._resume.step_id if self._resume is not None else None

    async def _forget(self) -> None:
        """Remove the run from the router's index of keyed and parallel runs."""
        plan = self._run_input().plan
        if self.versioned and (plan.trigger.key or plan.re_entry == "parallel"):
            await workflow.execute_local_activity(
                "tropa.forget_run", workflow.info().workflow_id, summary="forget active run",
                **control.LOCAL)

    # -- what handlers use (control.Runtime) --------------------------------------------------

    def resumed_deadline(self, step: PlanStep) -> datetime | None:
        """The deadline of the wait `step` had under way before continue-as-new, once."""
        resume = self._resume
        if resume is None or resume.step_id != step.id or resume.deadline is None:
            return None
        self._resume = None
        return resume.deadline

    async def pause(self, step: PlanStep, until: datetime, summary: str,
                    wake: Callable[[], bool] | None = None) -> bool:
        """Wait until `until` (False) or until `wake()` holds (True); continue as new meanwhile
        when the history grows too long."""

        def ready() -> bool:
            return (wake is not None and wake()) or self._due()

        while True:
            remaining = until - workflow.now()
            if remaining <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(ready, timeout=remaining, timeout_summary=summary)
            except TimeoutError:
                return False
            if wake is not None and wake():
                return True
            self._continue_as_new(step.id, until)

    async def holds(self, condition: str | None, event: EventIn | None,
                    label: str | None = None) -> bool:
        """Whether a condition holds; one that cannot be evaluated on this data does not, and
        the reason goes into the current step's detail."""
        if not condition:
            return True
        context = self.context()
        if event is not None:
            context["event"] = event.as_context()
        try:
            return bool(await workflow.execute_local_activity(
                "tropa.evaluate",
                EvaluateInput(customer_id=self._run_input().customer_id, expression=condition,
                              context=context),
                result_type=bool, summary=f"{label or self._current}: condition",
                **control.LOCAL,
            ))
        except (ActivityError, ApplicationError) as err:
            # A local activity's failure may come wrapped in an ActivityError or bare.
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.type == "ExpressionRefused":
                on = f" on event {event.event_id}" if event is not None else ""
                self._note(f"`{condition}` could not be evaluated{on} ({cause.message}); "
                           "it counts as not holding")
                return False
            raise

    def remember(self, step: PlanStep, data: dict[str, Any]) -> None:
        """Keep a step's output for later templates and conditions."""
        self._outputs[step.id] = data
        self._outputs[step.type] = data

    def exit(self, reason: str) -> NoReturn:
        """End the run here (an `exit` step, a holdout)."""
        # Raised here, not in the handler: the sandbox may give the handler's module a copy
        # of its own, and the class caught in `run` must be this module's.
        raise control.RunExit(reason)

    def finish_current(self, outcome: str, detail: str) -> None:
        """Close the record of the step under way (exit, holdout, stop)."""
        if self._records and self._records[-1].finished_at is None:
            last = self._records[-1]
            last.outcome, last.detail = outcome, self._with_notes(detail)
            last.finished_at = workflow.now()

    def context(self) -> dict[str, Any]:
        """What templates and conditions see (the customer is added by the activity): only
        the step outputs the journey reads."""
        inp = self._run_input()
        wanted = inp.plan.step_outputs
        outputs = self._outputs if wanted is None else {
            k: v for k, v in self._outputs.items() if k in wanted}
        return {
            "event": inp.trigger_event.as_context(),
            "steps": dict(outputs),
            "journey": {"name": inp.plan.journey, "version": inp.plan.version},
        }

    def ref(self) -> RunRef:
        """Which run this is, for activities and idempotency keys."""
        inp = self._run_input()
        info = workflow.info()
        return RunRef(
            workflow_id=info.workflow_id,
            run_id=inp.run_key or info.first_execution_run_id,
            journey=inp.plan.journey,
            version=inp.plan.version,
            customer_id=inp.customer_id,
            category=inp.plan.category,
        )

    def _note(self, note: str) -> None:
        if len(self._notes) < MAX_NOTES:
            self._notes.append(note)

    def _with_notes(self, detail: str) -> str:
        return "; ".join(part for part in (detail, *self._notes) if part)

    def _run_input(self) -> RunInput:
        assert self._input is not None
        return self._input

"""The send step inside JourneyRun: gate, quiet hours, delivery until delivered, receipts,
fallback. Workflow code: deterministic, no I/O; every decision that needs the world is an
activity whose answer is in the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from tropa.delivery import models as m
    from tropa.dsl.durations import parse_duration
    from tropa.dsl.plan import PlanStep, RunRef, StepCall, StepResult
    from tropa.workflows.options import activity_options

# The prepare phase only touches the database: it retries quickly, for at most an hour (a
# database down that long fails the step with a reason, it does not stall the run).
_PREPARE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
PREPARE_BOUND = timedelta(hours=1)
# `sent_unconfirmed`: the provider took the message, but no receipt came within
# receipt_timeout (a receipt can be lost when a worker dies between the provider's accept
# and Tropa's commit: the repeated call gets the existing id and no new receipt).
_DONE = ("accepted", "delivered", "sent_unconfirmed")


@dataclass
class Outcome:
    """What became of one channel's attempt."""

    status: str
    reason: str = ""
    channel: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Sender:
    """Performs `send` steps for one run; receipts arrive through `receipt`."""

    def __init__(self) -> None:
        self.receipts: dict[str, m.ReceiptSignal] = {}
        self.quiet = False
        """True while a message waits for quiet hours to end: nothing is in flight then."""

    def receipt(self, signal: m.ReceiptSignal) -> None:
        """Remember a receipt; a run waiting for that provider message id wakes up."""
        self.receipts[signal.provider_message_id] = signal

    async def send(self, step: PlanStep, run: RunRef, context: dict[str, Any]
                   ) -> tuple[str, str, dict[str, Any]]:
        """Try the channel, then each fallback, until one delivers or all fail."""
        params = step.params
        channels = [str(params["channel"]), *params.get("fallback", [])]
        within = parse_duration(params["deliver_within"]) if params.get("deliver_within") else None
        tried: list[str] = []
        result = Outcome(status="failed")
        for index, channel in enumerate(channels):
            has_next = index < len(channels) - 1
            # The last channel has nobody to hand over to: it retries until delivered.
            result = await self._channel(step, run, context, channel,
                                         within if has_next else None)
            result.channel = channel
            if result.status in _DONE:
                detail = f"{result.status} via {channel}"
                if result.reason:
                    detail += f" ({result.reason})"
                if tried:
                    detail += f" after {'; '.join(tried)}"
                return result.status, detail, {"channel": channel, **result.data}
            tried.append(f"{channel}: {result.status} ({result.reason})")
        detail = result.reason if len(channels) == 1 else "; ".join(tried)
        return result.status, detail, {"channel": result.channel, **result.data}

    async def _channel(self, step: PlanStep, run: RunRef, context: dict[str, Any],
                       channel: str, within: timedelta | None) -> Outcome:
        base = f"{run.workflow_id}/{run.run_id}/{step.id}"
        while True:
            call = StepCall(run=run, step_id=step.id, step_type=m.PREPARE,
                            params={**step.params, m.CHANNEL: channel,
                                    m.NOW: workflow.now().isoformat()},
                            context=context, idempotency_key=base)
            try:
                # The call the `send` step type declares (plans before it: the same values).
                options = activity_options(step.call) if step.call is not None else {
                    "start_to_close_timeout": timedelta(seconds=30),
                    "schedule_to_close_timeout": PREPARE_BOUND, "retry_policy": _PREPARE_RETRY}
                answer: StepResult = await workflow.execute_activity(
                    "tropa.send", call, result_type=StepResult, summary=f"{step.id}: {channel}",
                    **options)
            except ActivityError as err:
                # A data error (unknown customer, a value the store refuses) or, in histories
                # of the one-activity send, a cancelled message; or the hour passed.
                if _timed_out(err):
                    return Outcome("failed", "prepare did not finish within "
                                   f"{PREPARE_BOUND} (is the database reachable?)")
                final = _final(err)
                if final is None:
                    raise
                return final
            prepared = m.Prepared.model_validate(answer.data)
            if prepared.status != "quiet" or prepared.wait_until is None:
                break
            # Quiet hours: the message waits for the window to open, then passes the gate
            # again (consent or caps may have changed meanwhile).
            self.quiet = True
            try:
                await workflow.sleep(max(prepared.wait_until - workflow.now(),
                                         timedelta(seconds=1)),
                                     summary=f"{step.id}: {channel} quiet hours")
            finally:
                self.quiet = False
        if prepared.status != "queued":
            return Outcome(status=prepared.status, reason=prepared.reason,
                           data={"message_id": prepared.message_id})
        deadline = workflow.now() + within if within is not None else None
        return await self._deliver(run, step, channel, m.message_key(call, channel), prepared,
                                   deadline)

    async def _deliver(self, run: RunRef, step: PlanStep, channel: str, key: str,
                       p: m.Prepared, deadline: datetime | None) -> Outcome:
        data: dict[str, Any] = {"message_id": p.message_id}
        for round_no in range(1, p.max_rounds + 1):
            left = _left(deadline)
            if left is not None and left <= timedelta(0):
                return Outcome("not_delivered", "deliver_within passed", data=data)
            try:
                answer: StepResult = await workflow.execute_activity(
                    "tropa.send",
                    StepCall(run=run, step_id=step.id, step_type=m.DELIVER,
                             params={m.ROUND: round_no}, idempotency_key=key),
                    result_type=StepResult, task_queue=p.deliver_queue,
                    summary=f"{step.id}: {channel} delivery round {round_no}",
                    start_to_close_timeout=timedelta(seconds=p.deliver_timeout_seconds),
                    schedule_to_close_timeout=left,
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=p.retry_initial_seconds),
                        maximum_interval=timedelta(seconds=p.retry_max_interval_seconds),
                        maximum_attempts=0))
            except ActivityError as err:
                if _timed_out(err):
                    return Outcome("not_delivered", "deliver_within passed", data=data)
                final = _final(err)
                if final is None:
                    raise
                final.data = data
                return final
            delivered = m.Delivered.model_validate(answer.data)
            data["provider_message_id"] = delivered.provider_message_id
            if not p.wants_receipt:
                return Outcome("accepted", data=data)
            if delivered.receipt_state:
                # The receipt came before the id was committed (a worker died in between):
                # the deliver phase found it, nothing to wait for.
                self.receipt(m.ReceiptSignal(provider_message_id=delivered.provider_message_id,
                                             state=delivered.receipt_state,
                                             reason=delivered.receipt_reason))
            receipt = await self._await_receipt(delivered.provider_message_id, p, deadline)
            if receipt is None:
                if deadline is not None and workflow.now() >= deadline:
                    return Outcome("not_delivered", "no receipt within deliver_within",
                                   data=data)
                return Outcome("sent_unconfirmed", "no receipt within receipt_timeout",
                               data=data)
            if receipt.state == "delivered":
                return Outcome("delivered", data=data)
            if receipt.state == "rejected":
                return Outcome("rejected", receipt.reason, data=data)
            # Undelivered for now (phone off, network): a new round under a new key.
            pause = timedelta(seconds=p.redeliver_after_seconds)
            left = _left(deadline)
            await workflow.sleep(min(pause, left) if left is not None else pause)
        return Outcome("undelivered", f"not delivered after {p.max_rounds} rounds", data=data)

    async def _await_receipt(self, provider_message_id: str, p: m.Prepared,
                             deadline: datetime | None) -> m.ReceiptSignal | None:
        limit = timedelta(seconds=p.receipt_timeout_seconds)
        left = _left(deadline)
        if left is not None:
            limit = min(limit, max(left, timedelta(seconds=1)))
        try:
            await workflow.wait_condition(lambda: provider_message_id in self.receipts,
                                          timeout=limit)
        except TimeoutError:
            return None
        return self.receipts[provider_message_id]


def _timed_out(err: ActivityError) -> bool:
    """Whether the activity's time bound passed: reported as a timeout, or as its last
    error when the bound left no time for another retry."""
    return isinstance(err.cause, ActivityTimeout) or err.retry_state == RetryState.TIMEOUT


def _final(err: ActivityError) -> Outcome | None:
    """A phase's final failure as the channel's outcome; None for anything else (a
    cancellation, which must go on up)."""
    cause = err.cause
    if not (isinstance(cause, ApplicationError) and cause.non_retryable):
        return None
    kind = cause.type or "failed"
    if kind.startswith("MessageInvalid."):
        return Outcome("cancelled", kind.removeprefix("MessageInvalid."))
    return Outcome("failed", kind.removeprefix("SendFailed."))


def _left(deadline: datetime | None) -> timedelta | None:
    return None if deadline is None else deadline - workflow.now()

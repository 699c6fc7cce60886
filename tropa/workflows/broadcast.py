"""Broadcast: one message to a whole audience, as one workflow per broadcast.

It waits for the start, snapshots the audience into the recipient list, then prepares
recipients a page at a time (policy gate, rendering, message log: one activity a page)
and hands the page's messages to the channel's delivery queue in batches. Between pages
it obeys pause, resume and cancel; waves (local send times, quiet hours) are timers. The
history stays short: it continues as new once it passes a set length. The memo holds the
counts (never personal data), so the Web UI shows the progress.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tropa.activities.broadcast import BroadcastActivities
    from tropa.broadcasts.models import (
        MEMO_PROGRESS,
        BroadcastInput,
        BroadcastState,
        Counts,
        DeliverIn,
        DeliverOut,
        FinishIn,
        PageIn,
        PageOut,
        SnapshotIn,
        SnapshotOut,
    )

PREPARE_AHEAD = "broadcast-prepare-ahead"
"""Patch: the next page is prepared while the current one is delivered."""
# Database work retries quickly and without end: a broadcast waits out a database outage.
_DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# Provider outages retry with backoff until the provider is back, like a journey's send.
_DELIVER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5),
                             maximum_interval=timedelta(minutes=10))


@workflow.defn(name="Broadcast")
class Broadcast:
    """Sends one broadcast to its snapshot of the audience."""

    def __init__(self) -> None:
        self._state = BroadcastState()

    @workflow.signal
    def pause(self) -> None:
        """Stop after the page under way; nothing more goes out until resumed."""
        self._state.paused = True

    @workflow.signal
    def resume(self) -> None:
        """Go on from where the broadcast paused."""
        self._state.paused = False

    @workflow.signal
    def cancel(self) -> None:
        """Finish the page under way, then leave every recipient not yet handled out."""
        self._state.cancelled = True

    @workflow.query
    def state(self) -> BroadcastState:
        """Counts and flags as the workflow sees them (the API reads the database)."""
        return self._state

    @workflow.run
    async def run(self, inp: BroadcastInput) -> BroadcastState:
        """Snapshot, then send page by page until every recipient is handled."""
        # Signals that came before this point (or were carried over) keep their effect.
        carried = inp.state
        carried.paused = carried.paused or self._state.paused
        carried.cancelled = carried.cancelled or self._state.cancelled
        self._state = carried
        state = self._state
        if not state.snapshotted:
            await self._until(inp.snapshot_at)
            if state.cancelled:
                return await self._finish(inp, "cancelled")
            try:
                snap = await self._snapshot(inp)
            except ActivityError:
                return await self._finish(inp, "failed")
            state.snapshotted, state.recipients, state.holdout = (True, snap.recipients,
                                                                  snap.holdout)
            self._memo()
        # Runs started before pages were prepared ahead keep their old order of commands.
        ahead_allowed = workflow.patched(PREPARE_AHEAD)
        ahead: asyncio.Task[PageOut] | None = None
        while True:
            await workflow.wait_condition(lambda: not state.paused or state.cancelled)
            if state.cancelled and ahead is None:
                return await self._finish(inp, "cancelled")
            # A page prepared ahead is the page under way: its messages are in the log as
            # queued, so it is delivered even if a cancel came meanwhile.
            page = await ahead if ahead is not None else await self._prepare(inp, state)
            ahead = None
            sending = asyncio.ensure_future(self._deliver(inp, page))
            if (ahead_allowed and page.handled > 0 and not state.paused
                    and not state.cancelled
                    and workflow.info().get_current_history_length() <= inp.history_limit):
                # The next page is gated and logged while this one goes out.
                ahead = asyncio.ensure_future(self._prepare(inp, state))
            delivered = await sending
            state.counts = state.counts.add(page.counts).add(
                Counts(queued=-delivered.sent - delivered.failed, sent=delivered.sent,
                       failed=delivered.failed))
            self._memo()
            if page.handled == 0:
                if page.next_due is None:
                    return await self._finish(inp, "completed")
                # The next wave (a time zone's local time, or quiet hours ending).
                await self._until(page.next_due)
            if (ahead is None
                    and workflow.info().get_current_history_length() > inp.history_limit):
                state.continued += 1
                workflow.continue_as_new(inp.model_copy(update={"state": state}))

    async def _prepare(self, inp: BroadcastInput, state: BroadcastState) -> PageOut:
        state.pages += 1
        return await workflow.execute_activity_method(
            BroadcastActivities.prepare_page,
            PageIn(broadcast_id=inp.broadcast_id, now=workflow.now(), limit=inp.page_size),
            start_to_close_timeout=timedelta(seconds=inp.page_timeout_seconds),
            retry_policy=_DB_RETRY, summary=f"page {state.pages}: gate and log")

    async def _snapshot(self, inp: BroadcastInput) -> SnapshotOut:
        return await workflow.execute_activity_method(
            BroadcastActivities.snapshot,
            # The workflow's clock: on time, or later if the worker was down at the start.
            SnapshotIn(broadcast_id=inp.broadcast_id, now=max(workflow.now(), inp.snapshot_at)),
            start_to_close_timeout=timedelta(hours=2), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=_DB_RETRY, summary="snapshot of the audience")

    async def _deliver(self, inp: BroadcastInput, page: PageOut) -> DeliverOut:
        if not page.keys:
            return DeliverOut()
        size = max(page.batch_size, 1)
        batches = [page.keys[i:i + size] for i in range(0, len(page.keys), size)]
        results = await asyncio.gather(*[
            workflow.execute_activity_method(
                BroadcastActivities.deliver,
                DeliverIn(broadcast_id=inp.broadcast_id, keys=batch),
                task_queue=page.deliver_queue,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=page.deliver_heartbeat_seconds),
                retry_policy=_DELIVER_RETRY,
                summary=f"deliver {len(batch)}")
            for batch in batches])
        return DeliverOut(sent=sum(r.sent for r in results),
                          failed=sum(r.failed for r in results))

    async def _until(self, moment: datetime) -> None:
        """Wait until `moment`, or until cancelled (a pause does not stop the clock)."""
        left = moment - workflow.now()
        if left <= timedelta(0):
            return
        state = self._state
        try:
            await workflow.wait_condition(lambda: state.cancelled, timeout=left,
                                          timeout_summary="until the next wave")
        except TimeoutError:
            return

    async def _finish(self, inp: BroadcastInput, status: str) -> BroadcastState:
        await workflow.execute_activity_method(
            BroadcastActivities.finish,
            FinishIn(broadcast_id=inp.broadcast_id, status=status, now=workflow.now()),
            start_to_close_timeout=timedelta(minutes=5), retry_policy=_DB_RETRY,
            summary=status)
        self._memo(status)
        return self._state

    def _memo(self, status: str | None = None) -> None:
        s = self._state
        progress = {"recipients": s.recipients, "holdout": s.holdout, "pages": s.pages,
                    "queued": s.counts.queued, "sent": s.counts.sent,
                    "failed": s.counts.failed, "skipped": s.counts.skipped,
                    "suppressed": s.counts.suppressed,
                    "state": status or ("paused" if s.paused else "sending")}
        workflow.upsert_memo({MEMO_PROGRESS: progress})

"""`re_entry: restart` stops the old run gracefully; runs leave the ActiveRun index at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.dsl.plan import RunStatus
from tropa.sandbox.state import Faults
from tropa.settings import Settings
from tropa.store.models import ActiveRun
from tropa.workflows.journey_run import JourneyRun

NUDGE = """
journey: nudge
settings: {category: service}
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
steps:
  - send: {channel: sms, text: "Cart {{ event.data.cart_id }}"}
  - wait: 1d
"""
RUN = "journey/nudge/c-1/k1"


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        h.publish(NUDGE)
        add_customer(h.engine, "c-1")
        yield h


async def _old_run(harness: Harness, run_id: str) -> RunStatus:
    handle = harness.client.get_workflow_handle(RUN, run_id=run_id)

    async def closed() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
    await eventually(closed, message="old run closed")
    assert (await handle.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    return await handle.query(JourneyRun.status)  # type: ignore[no-any-return]


async def test_restart_lets_the_send_in_flight_finish_then_starts_over(
        harness: Harness, sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(slow_seconds=1.5)
    await harness.fire("cart.updated", "c-1", {"cart_id": "k1"}, event_id="e-1")
    first = (await harness.handle(RUN).describe()).run_id
    await eventually(lambda: sandbox.box.calls, message="the first send reached the provider")

    routed = await harness.fire("cart.updated", "c-1", {"cart_id": "k1"}, event_id="e-2")

    assert routed.started == [RUN]
    old = await _old_run(harness, first)
    # not terminated: the send in flight finished and is recorded, then the run stopped
    assert old.state == "exited"
    assert [(s.step_id, s.outcome) for s in old.steps] == [("1-send", "accepted")]

    async def resent() -> bool:
        status = await harness.status(RUN)
        return status.current_step == "2-wait" and len(sandbox.sent("sms")) == 2
    await eventually(resent, message="new run sent its own message")
    keys = {m["idempotency_key"] for m in sandbox.sent("sms")}
    assert len(keys) == 2  # the new run's message is a message of its own


async def test_restart_during_a_wait_records_it_cancelled(harness: Harness) -> None:
    await harness.fire("cart.updated", "c-1", {"cart_id": "k1"}, event_id="e-1")
    first = (await harness.handle(RUN).describe()).run_id

    async def waiting() -> bool:
        return (await harness.status(RUN)).current_step == "2-wait"
    await eventually(waiting, message="first run waiting")
    await harness.fire("cart.updated", "c-1", {"cart_id": "k1"}, event_id="e-2")

    old = await _old_run(harness, first)
    assert old.steps[-1].step_id == "2-wait"
    assert (old.steps[-1].outcome, old.steps[-1].detail) == (
        "cancelled", "restarted by event e-2")
    # the same event again restarts nothing
    again = await harness.handle(RUN).describe()
    await harness.fire("cart.updated", "c-1", {"cart_id": "k1"}, event_id="e-2")
    assert (await harness.handle(RUN).describe()).run_id == again.run_id


async def test_active_run_rows_go_when_runs_end(harness: Harness) -> None:
    harness.publish("""
journey: thanks
settings: {category: service}
trigger: {event: order.placed, key: "{{ event.data.order_id }}"}
steps:
  - send: {channel: sms, text: "Thanks"}
""")
    routed = await harness.fire("order.placed", "c-1", {"order_id": "o-1"})
    run = routed.started[0]
    with Session(harness.engine) as session:
        assert session.get(ActiveRun, run) is not None  # indexed before the run can wait

    status = await harness.ended(run)

    assert status.state == "completed"
    with Session(harness.engine) as session:
        assert session.get(ActiveRun, run) is None

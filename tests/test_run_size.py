"""Runs stay small: a run signalled all year continues as new and keeps its status.

A JourneyRun used to keep every event forever (with a linear duplicate check), copy every
step output into every activity input and never continue as new, so a customer with a busy
year grew one history without bound. Now the run keeps only events a listener may still
read, continues as new when its history grows long (carrying its place, records and
pending events), and its input and signals carry only the event fields the journey reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.dsl.plan import EventIn
from tropa.settings import Settings
from tropa.workflows.journey_run import JourneyRun

SUGGESTED_LIMIT = 4096  # the server's default history length for suggesting continue-as-new
EVENTS = 5000
LOYAL = """
journey: loyal
settings: {category: service}
trigger: {event: member.joined}
exit_on: [{event: member.left, where: "event.data.reason == 'closed'"}]
steps:
  - send: {channel: sms, text: "Welcome to the {{ event.data.tier }} tier"}
  - wait_for: {event: order.paid, where: "event.data.total > 100000", timeout: 400d}
  - send: {channel: sms, text: "Thanks for order {{ steps.wait_for.event.data.order_id }}"}
"""
RUN = "journey/loyal/c-1"


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        h.publish(LOYAL)
        add_customer(h.engine, "c-1")
        yield h


def _event(n: int, type_: str, data: dict[str, Any]) -> EventIn:
    return EventIn(event_id=f"y-{n}", type=type_, customer_id="c-1",
                   occurred_at=datetime.now(UTC), data=data)


async def _executions(harness: Harness) -> list[tuple[str, int, str]]:
    """(run id, history length, started input) of every execution, newest first."""
    found = []
    run_id: str | None = (await harness.handle(RUN).describe()).run_id
    while run_id:
        handle: WorkflowHandle[Any, Any] = harness.client.get_workflow_handle(RUN, run_id=run_id)
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        found.append((run_id, len(history.events), str(started.input)))
        run_id = started.continued_execution_run_id or None
    return found


async def test_a_year_of_events_keeps_every_history_small_and_the_status_whole(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    await harness.fire("member.joined", "c-1", {"tier": "gold", "noise": "x" * 500})

    await harness.at(RUN, "2-wait_for")
    handle = harness.handle(RUN)
    batch = 250
    for start in range(0, EVENTS, batch):
        # A year: a batch of small orders (and visits that are no exit) every 18 days.
        await asyncio.gather(*(
            handle.signal(JourneyRun.event, _event(
                n, "order.paid" if n % 10 else "member.left",
                {"total": 100 + n, "order_id": f"o-{n}", "basket": ["sku"] * 20}
                if n % 10 else {"reason": "visit"}))
            for n in range(start, start + batch)))
        await handle.signal(JourneyRun.event, _event(start, "order.paid", {"total": 1}))  # dup
        await time_skipping.sleep(timedelta(days=365 / (EVENTS / batch)))
    await handle.signal(JourneyRun.event, _event(EVENTS, "order.paid",
                                                 {"total": 250_000, "order_id": "big"}))

    status = await harness.ended(RUN, timeout=120)

    assert status.state == "completed"
    assert status.continued >= 1
    assert [(s.step_id, s.outcome) for s in status.steps] == [
        ("1-send", "accepted"), ("2-wait_for", "received"), ("3-send", "accepted")]
    assert status.steps[1].detail == f"y-{EVENTS}"
    assert [m["text"] for m in sandbox.sent("sms")] == [
        "Welcome to the gold tier", "Thanks for order big"]
    executions = await _executions(harness)
    print(f"{EVENTS} events: {len(executions)} executions, history lengths "
          f"{[length for _, length, _ in executions]}")
    assert len(executions) == status.continued + 1
    assert max(length for _, length, _ in executions) < SUGGESTED_LIMIT
    # the input carries only the event fields the journey reads
    first_input = executions[-1][2]
    assert "gold" in first_input and "noise" not in first_input


async def test_signals_carry_only_the_event_fields_the_journey_reads(
        harness: Harness) -> None:
    await harness.fire("member.joined", "c-1", {"tier": "gold", "phone_note": "call +7916"})
    await harness.fire("order.paid", "c-1", {"total": 5, "order_id": "o-1", "basket": ["a"]})

    history = await harness.handle(RUN).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    trigger = json.loads(started.input.payloads[0].data)["trigger_event"]
    signals = [json.loads(a.input.payloads[0].data) for a in (
        e.workflow_execution_signaled_event_attributes for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")) if a.signal_name == "event"]
    assert trigger["data"] == {"tier": "gold"}
    assert [s["data"] for s in signals] == [{"total": 5, "order_id": "o-1"}]


def test_the_inbox_keeps_only_what_a_listener_may_read_and_bounded_ids() -> None:
    from tropa.workflows.inbox import EXIT, RECENT_IDS, STEP, Inbox

    inbox = Inbox()
    inbox.close(EXIT)  # a journey without exit_on
    assert inbox.add(_event(1, "order.paid", {}))
    assert len(inbox) == 0  # nobody listens: not kept
    assert not inbox.add(_event(1, "order.paid", {}))  # a duplicate
    seen = inbox.open(STEP)
    for n in range(2, 5):
        inbox.add(_event(n, "order.paid", {}))
    assert [e.event_id for e in inbox.since(seen)] == ["y-2", "y-3", "y-4"]
    inbox.advance(STEP, seen + 2)
    assert [e.event_id for e in inbox.since(seen)] == ["y-4"]
    inbox.close(STEP)
    assert len(inbox) == 0
    for n in range(10, 10 + 2 * RECENT_IDS):
        inbox.add(_event(n, "order.paid", {}))
    pending, cursors, ids = inbox.export()
    assert pending == [] and cursors == {} and len(ids) == RECENT_IDS


def test_the_compiler_records_the_event_fields_and_step_outputs_a_journey_reads() -> None:
    from tropa.dsl.compiler import compile_journey

    plan = compile_journey(LOYAL)
    assert (plan.event_fields, plan.step_outputs) == (
        ["order_id", "reason", "tier", "total"], ["wait_for"])
    whole = compile_journey(LOYAL.replace("{{ event.data.tier }}", "{{ event.data }}"))
    assert whole.event_fields is None

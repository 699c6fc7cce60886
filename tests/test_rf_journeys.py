"""RF journeys on the time-skipping server: the daily run moves a customer into `at_risk` once,
the journey that listens to `segment: {enter: at_risk}` starts once, and the next day's run
starts nothing again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.activities.segments import SegmentsSweepResult
from tropa.services import segments
from tropa.settings import Settings
from tropa.workflows.segments_daily import SegmentsDaily

AT_RISK = """
journey: rf-at-risk
trigger: {segment: {enter: at_risk}}
re_entry: ignore
steps:
  - send: {channel: sms, text: "{{ customer.first_name }} ({{ customer.segment }}): 10% off"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def _purchases(engine: sa.Engine, customer: str, times: list[datetime]) -> None:
    with engine.begin() as conn:
        for i, at in enumerate(times):
            conn.execute(sa.text(
                "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, "
                "refunded, channel, items, attributes, body_hash, counted, created_at, "
                "updated_at) VALUES (:id, :c, :at, 'placed', 'RUB', 1000, 0, 'online', '[]', "
                "'{}', 'h', true, :at, :at)"), {"id": f"{customer}-{i}", "c": customer, "at": at})
        conn.execute(sa.text(
            "INSERT INTO purchase_stats (customer_id, currency, orders_count, total_spent, "
            "first_purchase_at, last_purchase_at) VALUES (:c, 'RUB', :n, :sum, :first, :last)"),
            {"c": customer, "n": len(times), "sum": 1000 * len(times), "first": min(times),
             "last": max(times)})


async def _daily(harness: Harness, env: WorkflowEnvironment) -> SegmentsSweepResult:
    # The sweep runs at the server's "now"; no time may pass while it works.
    with env.auto_time_skipping_disabled():
        return await harness.client.execute_workflow(
            SegmentsDaily.run, id=f"rf-daily-{uuid.uuid4()}", task_queue=harness.task_queue)


async def test_daily_run_moves_into_at_risk_once_and_starts_the_journey_once(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(AT_RISK)
    add_customer(harness.engine, "c-rf")
    now = await time_skipping.get_current_time()
    # Five purchases, the last 30 days ago: loyal today, at risk from tomorrow.
    _purchases(harness.engine, "c-rf", [now - timedelta(days=d) for d in (30, 60, 90, 120, 150)])
    for event in segments.refresh_customers(harness.engine, ["c-rf"], now=now,
                                            cause="purchase"):
        await harness.router.ingest(event)

    today = await _daily(harness, time_skipping)
    assert (today.moved, sandbox.sent()) == (0, [])

    await time_skipping.sleep(timedelta(days=1))
    tomorrow = await _daily(harness, time_skipping)
    assert (tomorrow.moved, tomorrow.events) == (1, 2)  # exited loyal, entered at_risk
    harness.started.add("journey/rf-at-risk/c-rf")
    await eventually(lambda: sandbox.sent("sms"), message="the at-risk SMS")

    await time_skipping.sleep(timedelta(days=1))
    again = await _daily(harness, time_skipping)
    assert again.moved == 0
    status = await harness.finish("journey/rf-at-risk/c-rf")
    assert status.state == "completed"
    assert [m["text"] for m in sandbox.sent("sms")] == ["Anna (at_risk): 10% off"]
    with harness.engine.connect() as conn:
        moves = conn.execute(sa.text("SELECT from_segment, to_segment, cause FROM segment_moves"
                                     " ORDER BY id")).all()
        entered = conn.execute(sa.text("SELECT count(*) FROM events WHERE type = "
                                       "'segment.entered' AND routed_at IS NOT NULL")).scalar()
    assert [tuple(m) for m in moves] == [(None, "loyal", "purchase"), ("loyal", "at_risk", "time")]
    assert entered == 2

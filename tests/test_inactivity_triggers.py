"""Inactivity triggers on the time-skipping server with a real worker: 90 days without an order
start a run at 11:00 local on day 90, an order on day 95 starts a new lapse that fires 90 days
later, and no lapse ever starts two runs; a customer without orders counts from registration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.test_date_triggers import MOSCOW, hour_before, local, sweep
from tropa.dsl.plan import EventIn
from tropa.settings import Settings

WINBACK = """
journey: winback
trigger:
  inactivity: {event: order.placed, for: 90d, at: "11:00"}
exit_on: [order.placed]
steps:
  - send: {channel: sms, text: "{{ customer.first_name }} {{ event.data.last_at or 'never' }}"}
  - wait: 7d
  - send: {channel: sms, text: "{{ customer.first_name }} last call"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def order(harness: Harness, customer_id: str, n: int) -> datetime:
    """An `order.placed` event at the server's now, through the product's intake."""
    at = await harness.env.get_current_time()
    await harness.router.ingest(EventIn(event_id=f"order-{customer_id}-{n}", type="order.placed",
                                        customer_id=customer_id, occurred_at=at))
    return at


async def test_ninety_days_without_an_order_fire_once_per_lapse(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(WINBACK)
    start = await time_skipping.get_current_time()
    day0 = start.astimezone(MOSCOW).date()
    add_customer(harness.engine, "idle", first_name="Ida", phone="+79160000011",
                 email="idle@example.com", time_zone="Europe/Moscow")
    add_customer(harness.engine, "new", first_name="Nik", phone="+79160000012",
                 email="new@example.com", time_zone="Europe/Moscow", registered_at=day0)
    first_order = await order(harness, "idle", 1)

    day90 = local(day0 + timedelta(days=90), 11, MOSCOW)
    once = await sweep(harness, hour_before(day90))
    twice = await sweep(harness, hour_before(day90))
    next_day = await sweep(harness, hour_before(day90) + timedelta(days=1))
    assert (once.started, twice.started, next_day.started) == (2, 0, 0)

    await time_skipping.sleep(local(day0 + timedelta(days=95), 12, MOSCOW)
                              - await time_skipping.get_current_time())
    second_order = await order(harness, "idle", 2)
    day185 = local(day0 + timedelta(days=185), 11, MOSCOW)
    quiet = await sweep(harness, hour_before(day185) - timedelta(days=1))
    lapse = await sweep(harness, hour_before(day185))
    again = await sweep(harness, hour_before(day185) + timedelta(hours=1))
    assert (quiet.started, lapse.started, again.started) == (0, 1, 0)

    runs = {f"journey/winback/idle/{_utc(first_order)}": (day90, "exited"),
            f"journey/winback/new/since-{day0.isoformat()}": (day90, "completed"),
            f"journey/winback/idle/{_utc(second_order)}": (day185, "completed")}
    harness.started.update(runs)
    for workflow_id, (moment, state) in runs.items():
        status = await harness.finish(workflow_id)
        assert status.state == state, workflow_id
        assert abs(status.steps[0].started_at - moment) < timedelta(minutes=1), workflow_id
    # The order on day 95 ended the first lapse's run before its last call.
    assert sorted(str(m["text"]) for m in sandbox.sent("sms")) == sorted([
        f"Ida {first_order.isoformat()}", "Nik never", "Nik last call",
        f"Ida {second_order.isoformat()}", "Ida last call"])


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

"""Schedule triggers on the time-skipping server with a real worker: each cron fire starts one
run per audience customer, with the fire time in the run id; a second fire of the same time
starts nothing twice; a paused journey fires nothing; starts keep to the configured rate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.services import journeys
from tropa.services.schedule_fire import ScheduleFireInput
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.workflows.schedule_fire import ScheduleFire

MOSCOW = ZoneInfo("Europe/Moscow")
WEEKLY = """
journey: weekly
trigger:
  schedule: {cron: "0 10 * * MON", timezone: Europe/Moscow}
  audience:
    all:
      - tag: vip
      - consent: sms
steps:
  - send: {channel: sms, text: "Monday offer for {{ customer.first_name }}"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def next_monday_ten(after: datetime) -> datetime:
    """The next time `0 10 * * MON` in Moscow fires after `after`."""
    day = after.astimezone(MOSCOW).date()
    while True:
        moment = datetime.combine(day, time(10), tzinfo=MOSCOW)
        if moment.weekday() == 0 and moment > after:
            return moment
        day += timedelta(days=1)


async def fire(harness: Harness, at: datetime) -> ScheduleFireInput:
    """Move the clock to `at` and run the fire the journey's Schedule starts then."""
    env = harness.env
    ahead = at - await env.get_current_time()
    if ahead > timedelta(0):
        await env.sleep(ahead)
    return await harness.client.execute_workflow(
        ScheduleFire.run, ScheduleFireInput(journey="weekly", fire_time=at),
        id=f"schedule/weekly-{uuid.uuid4()}", task_queue=harness.task_queue)


def vips(harness: Harness, count: int) -> list[str]:
    ids = [f"vip-{i}" for i in range(count)]
    for i, cid in enumerate(ids):
        add_customer(harness.engine, cid, first_name=f"V{i}", tags=["vip"])
    add_customer(harness.engine, "plain", first_name="Plain")  # not in the audience
    add_customer(harness.engine, "no-consent", first_name="Nope", tags=["vip"], consents={})
    return ids


async def test_each_fire_starts_one_run_per_member_once(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(WEEKLY)
    members = vips(harness, 3)
    first = next_monday_ten(await time_skipping.get_current_time())
    second = next_monday_ten(first)
    for moment in (first, second):
        stamp = moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")
        ids = [f"journey/weekly/{cid}/schedule-{stamp}" for cid in members]
        harness.started.update(ids)
        once = await fire(harness, moment)
        assert (once.started, once.existed, once.skipped) == (3, 0, 0)
        # the same fire time again (a re-run, a restarted worker) starts nothing twice
        again = await fire(harness, moment)
        assert (again.started, again.existed) == (0, 3)
        for workflow_id in ids:
            status = await harness.ended(workflow_id)
            assert status.state == "completed", workflow_id
            assert abs(status.steps[0].started_at - moment) < timedelta(minutes=1)
    texts = sorted(str(m["text"]) for m in sandbox.sent("sms"))
    assert texts == sorted(f"Monday offer for V{i}" for i in range(3) for _ in range(2))


async def test_a_paused_journey_fires_nothing(harness: Harness,
                                              time_skipping: WorkflowEnvironment,
                                              sandbox: SandboxServer) -> None:
    harness.publish(WEEKLY)
    vips(harness, 2)
    with session_scope(harness.engine) as session:
        journeys.change_status(session, "weekly", "pause")
    moment = next_monday_ten(await time_skipping.get_current_time())
    result = await fire(harness, moment)
    assert (result.started, result.existed, result.skipped) == (0, 0, 0)
    assert sandbox.sent("sms") == []


async def test_starts_keep_to_the_configured_rate(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    settings.triggers.schedule_start_rate = 2  # two runs a second at most
    async with running(time_skipping, engine, settings, task_queue) as harness:
        harness.publish(WEEKLY)
        members = vips(harness, 7)
        moment = next_monday_ten(await time_skipping.get_current_time())
        result = await fire(harness, moment)
        assert result.started == 7
        stamp = moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")
        starts = []
        for cid in members:
            workflow_id = f"journey/weekly/{cid}/schedule-{stamp}"
            harness.started.add(workflow_id)
            description = await harness.handle(workflow_id).describe()
            assert description.status in (WorkflowExecutionStatus.RUNNING,
                                          WorkflowExecutionStatus.COMPLETED)
            starts.append(description.start_time)
        starts.sort()
        # in any one second of the server's clock, at most two runs started
        for i, begun in enumerate(starts):
            assert sum(1 for s in starts[i:] if s - begun < timedelta(seconds=1)) <= 2, starts
        assert starts[-1] - starts[0] >= timedelta(seconds=3)  # 7 runs at 2/s: 4 pages

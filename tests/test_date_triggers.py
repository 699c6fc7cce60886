"""Date triggers on the time-skipping server with a real worker: a birthday journey and a
children's-birthdays journey over two years, customers in three zones, one born on Feb 29.
Every run starts at its local time, once per occurrence, whether a sweep runs twice or the
stack was down across the moment."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.activities.time_triggers import TimeTriggersResult
from tropa.settings import Settings
from tropa.workflows.time_triggers import TimeTriggersHourly

BIRTHDAY = """
journey: birthday
trigger:
  date: customer.birthday
  offset: -1d
  at: "10:00"
  every: year
steps:
  - send: {channel: sms, text: "{{ customer.first_name }} {{ event.data.year }}"}
"""
CHILDREN = """
journey: children
trigger:
  date: customer.attributes.children[].birth_date
  at: "11:00"
steps:
  - send: {channel: sms, text: "{{ event.data.item.name }} {{ event.data.year }}"}
"""
MOSCOW, VLADIVOSTOK, NEW_YORK = (ZoneInfo(z) for z in
                                 ("Europe/Moscow", "Asia/Vladivostok", "America/New_York"))


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def sweep(harness: Harness, at: datetime) -> TimeTriggersResult:
    """Move the clock to `at` (or run now, when a sweep just ran there) and run the hourly
    sweep; no time is skipped while it runs."""
    env = harness.env
    ahead = at - await env.get_current_time()
    assert ahead > -timedelta(minutes=1), f"the clock is past {at}"
    if ahead > timedelta(0):
        await env.sleep(ahead)
    with env.auto_time_skipping_disabled():
        return await harness.client.execute_workflow(
            TimeTriggersHourly.run, id=f"sweep-{uuid.uuid4()}", task_queue=harness.task_queue)


def local(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


def hour_before(moment: datetime) -> datetime:
    """The top of the hour at least an hour before `moment` (when the schedule runs)."""
    utc = moment.astimezone(ZoneInfo("UTC")) - timedelta(hours=1)
    return utc.replace(minute=0, second=0, microsecond=0)


async def test_birthdays_over_two_years_start_once_at_local_time(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(BIRTHDAY)
    harness.publish(CHILDREN)

    def customer(customer_id: str, name: str, phone: str, **fields: object) -> None:
        add_customer(harness.engine, customer_id, first_name=name, phone=phone,
                     email=f"{customer_id}@example.com", **fields)

    now = await time_skipping.get_current_time()
    first = now.year + 1 if (now.month, now.day) >= (2, 1) else now.year
    customer("leap", "Leap", "+79160000001", birthday=date(2000, 2, 29), time_zone="Europe/Moscow")
    customer("vlad", "Vlad", "+79160000002", birthday=date(1985, 3, 10),
             time_zone="Asia/Vladivostok")
    customer("ny", "Nora", "+79160000003", birthday=date(1990, 3, 10), time_zone="America/New_York")
    customer("kids", "Olga", "+79160000004", time_zone="Europe/Moscow",
             attributes={"children": [{"name": "Ivan", "birth_date": "2015-03-01"},
                                      {"name": "Masha", "birth_date": "03.03.2018"}]})

    expected: dict[str, datetime] = {}
    for year in (first, first + 1):
        leap_day = date(year, 2, 28 if calendar.isleap(year) else 27)
        moments = {
            f"journey/birthday/leap/{year}": local(leap_day, 10, MOSCOW),
            f"journey/children/kids/{year}-i0": local(date(year, 3, 1), 11, MOSCOW),
            f"journey/children/kids/{year}-i1": local(date(year, 3, 3), 11, MOSCOW),
            f"journey/birthday/vlad/{year}": local(date(year, 3, 9), 10, VLADIVOSTOK),
            f"journey/birthday/ny/{year}": local(date(year, 3, 9), 10, NEW_YORK),
        }
        expected.update(moments)
        harness.started.update(moments)
        down = year == first + 1  # the second year, the stack is down across New York's 10:00
        for workflow_id, moment in sorted(moments.items(), key=lambda kv: kv[1]):
            if down and workflow_id.endswith("/ny/" + str(year)):
                continue
            before = hour_before(moment)
            once = await sweep(harness, before)
            twice = await sweep(harness, before)
            assert once.started >= 1, (workflow_id, once)
            assert (twice.started, twice.due) == (0, 0), (workflow_id, twice)
        if down:
            ny = moments[f"journey/birthday/ny/{year}"]
            last = await sweep(harness, hour_before(ny) - timedelta(hours=2))
            assert last.started == 0
            back = hour_before(ny) + timedelta(hours=4)  # six hours after the last sweep
            caught = await sweep(harness, back)
            again = await sweep(harness, back + timedelta(hours=1))
            assert (caught.started, again.started, again.due) == (1, 0, 0)
            expected[f"journey/birthday/ny/{year}"] = back

    for workflow_id, moment in expected.items():
        status = await harness.finish(workflow_id)
        assert status.state == "completed", workflow_id
        assert abs(status.steps[0].started_at - moment) < timedelta(minutes=1), workflow_id

    texts = sorted(str(m["text"]) for m in sandbox.sent("sms"))
    assert texts == sorted(f"{name} {year}" for year in (first, first + 1)
                           for name in ("Leap", "Vlad", "Nora", "Ivan", "Masha"))
    with harness.engine.connect() as conn:
        claims = conn.execute(sa.text("SELECT count(*) FROM trigger_claims "
                                      "WHERE started_at IS NOT NULL")).scalar()
    assert claims == len(expected) == 10

"""A schedule journey's own Temporal Schedule on the dev server follows the journey through the
API: created on publish with a readable id, the cron and its zone; paused and resumed with the
journey; deleted when archived. Triggered, it starts a run per audience customer through a
real worker."""

from __future__ import annotations

import uuid

import httpx
import sqlalchemy as sa
from temporalio.client import ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.services.schedule_fire import ScheduleFireInput
from tropa.settings import Settings
from tropa.worker.schedules import ensure_journey_schedules
from tropa.worker.worker import workers_running

YAML = {"Content-Type": "application/yaml"}


def journey(name: str) -> str:
    return f"""
journey: {name}
trigger:
  schedule: {{cron: "0 10 * * MON", timezone: Europe/Moscow}}
  audience: {{saved: vips-{name}}}
steps:
  - send: {{channel: sms, text: "Monday"}}
"""


async def test_the_schedule_follows_publish_pause_resume_archive(
        api: httpx.AsyncClient, dev_server: WorkflowEnvironment, any_engine: sa.Engine,
        settings: Settings, task_queue: str) -> None:
    name = f"weekly-{uuid.uuid4().hex[:8]}"
    saved = await api.put(f"/v1/audiences/vips-{name}", json={"filter": {"tag": "vip"}})
    assert saved.status_code == 201
    add_customer(any_engine, "v-1", tags=["vip"])
    add_customer(any_engine, "v-2", tags=["vip"])
    add_customer(any_engine, "other")
    created = await api.post("/v1/journeys", content=journey(name), headers=YAML)
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    assert (await api.post(f"/v1/journeys/{name}/versions/{version}/publish")).status_code == 200

    handle = dev_server.client.get_schedule_handle(f"tropa-journey-{name}")
    described = await handle.describe()
    assert described.schedule.spec.time_zone_name == "Europe/Moscow"
    calendar = described.schedule.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start) == (10, 0)
    assert calendar.day_of_week[0].start == 1  # Monday
    assert not described.schedule.state.paused
    assert name in (described.schedule.state.note or "")

    assert (await api.post(f"/v1/journeys/{name}/pause")).status_code == 200
    assert (await handle.describe()).schedule.state.paused
    assert (await api.post(f"/v1/journeys/{name}/resume")).status_code == 200
    assert not (await handle.describe()).schedule.state.paused

    # a worker start finds it in step and changes nothing
    assert (await ensure_journey_schedules(dev_server.client, any_engine, task_queue))[
        name] == "active"

    # fired now (as at 10:00 on a Monday): one run per audience customer
    async with workers_running(dev_server.client, settings, any_engine, task_queue=task_queue):
        await handle.trigger()

        async def fired() -> str | None:
            actions = (await handle.describe()).info.recent_actions
            if not actions:
                return None
            action = actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return action.workflow_id

        fire_id = await eventually(fired, message="the schedule fired")
        result = await dev_server.client.get_workflow_handle(
            fire_id, result_type=ScheduleFireInput).result()
        assert (result.started, result.existed) == (2, 0)
        assert result.fire_time is not None
        stamp = result.fire_time.strftime("%Y%m%dT%H%M%SZ")
        for cid in ("v-1", "v-2"):
            run = dev_server.client.get_workflow_handle(f"journey/{name}/{cid}/schedule-{stamp}")
            await eventually(lambda run=run: _completed(run), message=f"{cid}'s run completed")

    assert (await api.post(f"/v1/journeys/{name}/archive")).status_code == 200
    try:
        await handle.describe()
        raise AssertionError("the schedule outlived its archived journey")
    except RPCError:
        pass


async def _completed(run: object) -> bool:
    from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

    assert isinstance(run, WorkflowHandle)
    return (await run.describe()).status == WorkflowExecutionStatus.COMPLETED

"""Tropa's sweeps are Temporal Schedules with readable ids, created once and kept up to date."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tropa.worker.schedules import SWEEPS, ensure_schedules


async def test_sweeps_are_schedules_created_once_and_updated(dev_server: WorkflowEnvironment,
                                                             task_queue: str) -> None:
    first = await ensure_schedules(dev_server.client, task_queue)
    again = await ensure_schedules(dev_server.client, task_queue)  # a restarted worker
    assert first == again == [s.schedule_id for s in SWEEPS] and "tropa-rf-daily" in first
    description = await dev_server.client.get_schedule_handle("tropa-rf-daily").describe()
    # The server keeps the cron as a calendar: every day at 00:15 UTC.
    calendar = description.schedule.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start) == (0, 15)
    assert description.schedule.state.note is not None
    assert "RF segments" in description.schedule.state.note
    ids = [s.id async for s in await dev_server.client.list_schedules()]
    assert ids.count("tropa-rf-daily") == 1
    # the burn sweep is in the same list, on its interval from the settings
    loyalty = await dev_server.client.get_schedule_handle("tropa-loyalty-expiry").describe()
    assert loyalty.schedule.spec.intervals[0].every.total_seconds() > 0
    await dev_server.client.get_schedule_handle("tropa-loyalty-expiry").delete()

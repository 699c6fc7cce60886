"""Temporal Schedules of Tropa's own sweeps, created or brought up to date at worker start.

Each has a readable id, so operations staff find it on the Web UI's Schedules page. A sweep
that missed its time while the stack was down runs once on return (catch-up window, overlap
skipped), and its own mark in the database tells it how far back to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from tropa.logs import get_logger
from tropa.services import journey_schedules
from tropa.workflows.segments_daily import SegmentsDaily
from tropa.workflows.time_triggers import TimeTriggersHourly

log = get_logger("schedules")


@dataclass(frozen=True)
class Sweep:
    """A schedule Tropa keeps: id, cron in UTC, the workflow it starts, and what it says."""

    schedule_id: str
    cron: str
    workflow: Any
    note: str


SWEEPS = (
    Sweep("tropa-rf-daily", "15 0 * * *", SegmentsDaily.run,
          "RF segments: move customers whose last purchase crossed a recency bound today"),
    Sweep("tropa-time-triggers-hourly", "0 * * * *", TimeTriggersHourly.run,
          "Date and inactivity triggers: start the runs due in the coming hour"),
)


def schedule_of(sweep: Sweep, task_queue: str) -> Schedule:
    """The Temporal Schedule of one sweep on `task_queue`."""
    return Schedule(
        action=ScheduleActionStartWorkflow(sweep.workflow, id=sweep.schedule_id,
                                           task_queue=task_queue,
                                           static_summary=sweep.note),
        spec=ScheduleSpec(cron_expressions=[sweep.cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=timedelta(days=7)),
        state=ScheduleState(note=sweep.note),
    )


async def ensure_schedules(client: Client, task_queue: str) -> list[str]:
    """Create every sweep's schedule, or update it to this version's definition."""
    ids = []
    for sweep in SWEEPS:
        schedule = schedule_of(sweep, task_queue)
        try:
            await client.create_schedule(sweep.schedule_id, schedule)
            log.info("schedule_created", schedule_id=sweep.schedule_id)
        except ScheduleAlreadyRunningError:
            async def update(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(sweep.schedule_id).update(update)
        ids.append(sweep.schedule_id)
    return ids


async def ensure_journey_schedules(client: Client, engine: sa.Engine,
                                   task_queue: str) -> dict[str, str]:
    """Bring every schedule journey's own Schedule (`tropa-journey-<name>`) in step with the
    journey's status, for journeys published or changed while no API was there to do it."""
    return await journey_schedules.sync_all(client, engine, task_queue)

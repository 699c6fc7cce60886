"""Temporal Schedules of Tropa's own sweeps, created or brought up to date at worker start.

Each has a readable id, so operations staff find it on the Web UI's Schedules page. A sweep
that missed its time while the stack was down runs once on return (catch-up window, overlap
skipped), and its own mark in the database tells it how far back to look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from tropa.logs import get_logger
from tropa.services import journey_schedules
from tropa.settings import Settings
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep, SweepInput
from tropa.workflows.segments_daily import SegmentsDaily
from tropa.workflows.time_triggers import TimeTriggersHourly

log = get_logger("schedules")


def _no_args(_: Settings) -> list[Any]:
    return []


@dataclass(frozen=True)
class Sweep:
    """A schedule Tropa keeps: id, when (a cron in UTC, or every so long by the settings),
    the workflow it starts with its arguments, and what it says in the Web UI."""

    schedule_id: str
    workflow: Any
    note: str
    cron: str | None = None
    every: Callable[[Settings], timedelta] | None = None
    args: Callable[[Settings], list[Any]] = _no_args
    workflow_id: str | None = None


SWEEPS = (
    Sweep("tropa-rf-daily", SegmentsDaily.run,
          "RF segments: move customers whose last purchase crossed a recency bound today",
          cron="15 0 * * *"),
    Sweep("tropa-time-triggers-hourly", TimeTriggersHourly.run,
          "Date and inactivity triggers: start the runs due in the coming hour",
          cron="0 * * * *"),
    Sweep("tropa-loyalty-expiry", LoyaltyExpirySweep.run,
          "Loyalty: burn expired points and announce the ones about to expire",
          every=lambda s: timedelta(seconds=s.loyalty.expiry_sweep_seconds),
          args=lambda s: [SweepInput(notice_days=s.loyalty.expiring_notice_days)],
          workflow_id="loyalty-expiry-sweep"),
)
"""Every schedule of Tropa's own sweeps. Schedule journeys have one each as well, named
`tropa-journey-<name>`; tropa.services.journey_schedules keeps those."""


def schedule_of(sweep: Sweep, task_queue: str, settings: Settings | None = None) -> Schedule:
    """The Temporal Schedule of one sweep on `task_queue`."""
    settings = settings or Settings()
    if sweep.cron is not None:
        spec = ScheduleSpec(cron_expressions=[sweep.cron])
    else:
        assert sweep.every is not None
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=sweep.every(settings))])
    return Schedule(
        action=ScheduleActionStartWorkflow(sweep.workflow, args=sweep.args(settings),
                                           id=sweep.workflow_id or sweep.schedule_id,
                                           task_queue=task_queue,
                                           static_summary=sweep.note),
        spec=spec,
        # A sweep that missed its time while the stack was down runs once on return; one
        # still running when the next is due makes the next one skip.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=timedelta(days=7)),
        state=ScheduleState(note=sweep.note),
    )


async def ensure_schedules(client: Client, task_queue: str,
                           settings: Settings | None = None) -> list[str]:
    """Create every sweep's schedule, or update it to this version's definition (and the
    settings' intervals)."""
    ids = []
    for sweep in SWEEPS:
        schedule = schedule_of(sweep, task_queue, settings)
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

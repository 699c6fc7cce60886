"""The burn sweep's Temporal Schedule, created (or updated) when a worker starts."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from tropa.settings import Settings
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep, SweepInput

SCHEDULE_ID = "tropa-loyalty-expiry"


def expiry_schedule(settings: Settings) -> Schedule:
    """Every `expiry_sweep_seconds`, one sweep at a time (a late one is skipped)."""
    loyalty = settings.loyalty
    return Schedule(
        action=ScheduleActionStartWorkflow(
            LoyaltyExpirySweep.run, SweepInput(notice_days=loyalty.expiring_notice_days),
            id="loyalty-expiry-sweep", task_queue=settings.temporal.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=timedelta(seconds=loyalty.expiry_sweep_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP))


async def ensure_expiry_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the current settings."""
    schedule = expiry_schedule(settings)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        async def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(update)

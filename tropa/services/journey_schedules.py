"""The Temporal Schedule of each schedule journey, kept in step with the journey's status.

`tropa-journey-<name>` exists while the journey has a schedule trigger and is not archived:
published -> active, paused -> paused, archived (or republished with another trigger) ->
deleted. The API brings it in step right after a publish, pause, resume or archive commits;
every worker start brings all of them in step (journeys published with `tropa publish`).
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from tropa.dsl.plan import Plan
from tropa.logs import get_logger
from tropa.services.schedule_fire import ScheduleFireInput
from tropa.store.db import session_scope
from tropa.store.models import Journey, JourneyVersion

log = get_logger("journey_schedules")
SCHEDULE_FIRE = "ScheduleFire"  # the workflow's registered name; this layer sits below it
PREFIX = "tropa-journey-"


def schedule_id(journey: str) -> str:
    """The readable id of a journey's schedule, as the Web UI's Schedules page lists it."""
    return f"{PREFIX}{journey}"


def journey_schedule(plan: Plan, task_queue: str, *, paused: bool) -> Schedule:
    """The Temporal Schedule of a schedule journey's plan."""
    trigger = plan.trigger.schedule
    assert trigger is not None
    if trigger.cron is not None:
        spec = ScheduleSpec(cron_expressions=[trigger.cron], time_zone_name=trigger.timezone)
        when = f"cron {trigger.cron} ({trigger.timezone})"
    else:
        assert trigger.at is not None
        at = trigger.at.astimezone(UTC)
        spec = ScheduleSpec(calendars=[ScheduleCalendarSpec(
            second=[ScheduleRange(at.second)], minute=[ScheduleRange(at.minute)],
            hour=[ScheduleRange(at.hour)], day_of_month=[ScheduleRange(at.day)],
            month=[ScheduleRange(at.month)], year=[ScheduleRange(at.year)],
            day_of_week=[ScheduleRange(0, 6)])], time_zone_name="UTC")
        when = f"once at {at.isoformat()}"
    note = f"Journey {plan.journey} (version {plan.version}): a run per audience customer, {when}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SCHEDULE_FIRE, ScheduleFireInput(journey=plan.journey),
            id=f"schedule/{plan.journey}", task_queue=task_queue, static_summary=note),
        spec=spec,
        # A fire still paging a large audience when the next is due: the next waits for it.
        # A stack that was down across fire times fires once on return (within a day).
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE,
                              catchup_window=timedelta(days=1)),
        state=ScheduleState(note=note, paused=paused))


def _wanted(engine: sa.Engine, journey: str) -> tuple[str, Plan | None]:
    """The journey's status and its live plan when that plan has a schedule trigger."""
    with session_scope(engine) as session:
        row = session.get(Journey, journey)
        if row is None or row.live_version is None:
            return ("missing" if row is None else row.status), None
        version = session.exec(select(JourneyVersion).where(
            JourneyVersion.journey == journey,
            JourneyVersion.version == row.live_version)).first()
        plan = Plan.model_validate(version.plan) if version is not None else None
        if plan is None or plan.trigger.kind != "schedule":
            return row.status, None
        return row.status, plan


async def sync_journey(client: Client, engine: sa.Engine, journey: str,
                       task_queue: str) -> str:
    """Bring one journey's schedule in step: "active", "paused", "deleted" or "none"."""
    status, plan = await run_in_threadpool(_wanted, engine, journey)
    handle = client.get_schedule_handle(schedule_id(journey))
    if plan is None or status not in ("published", "paused"):
        try:
            await handle.delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return "none"
        log.info("journey_schedule_deleted", journey=journey)
        return "deleted"
    paused = status == "paused"
    schedule = journey_schedule(plan, task_queue, paused=paused)
    try:
        await client.create_schedule(schedule_id(journey), schedule)
        log.info("journey_schedule_created", journey=journey, paused=paused)
    except ScheduleAlreadyRunningError:
        async def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(update)
        # the state in an update is not applied to pausing on every server version
        if paused:
            await handle.pause(note=schedule.state.note)
        else:
            await handle.unpause(note=schedule.state.note)
    return "paused" if paused else "active"


async def sync_all(client: Client, engine: sa.Engine, task_queue: str) -> dict[str, str]:
    """Bring every journey's schedule in step (at worker start)."""
    def names() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(Journey.name)).scalars())  # type: ignore[call-overload]

    done = {}
    for name in await run_in_threadpool(names):
        done[name] = await sync_journey(client, engine, name, task_queue)
    return done

"""One fire of a schedule journey: page through its audience in SQL and start one run per
customer, with the fire time in the run id, so a second fire of the same time (a retried
page, a restarted worker, a re-run) starts nothing twice.

The audience is read as of the fire time, in id order, one page at a time; a page holds at
most a second's worth of starts at the configured rate, and tells the workflow how long the
page should take, so the workflow paces itself with durable timers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from tropa.audiences import page_customer_ids, resolve
from tropa.audiences.conditions import Audience
from tropa.dsl.plan import EventIn, Plan
from tropa.errors import AudienceInvalid, AudienceNotFound
from tropa.logs import get_logger
from tropa.services.events import EventRouter
from tropa.services.time_triggers import run_id
from tropa.settings import TriggerSettings
from tropa.store.db import session_scope
from tropa.store.models import Journey, JourneyVersion

log = get_logger("schedule_fire")
PARALLEL_STARTS = 16


class ScheduleFireInput(BaseModel):
    """What a journey's Temporal Schedule starts: the journey; a continued fire also carries
    its fire time, where it got to and its counts so far."""

    journey: str
    fire_time: datetime | None = None
    after_id: str | None = None
    started: int = 0
    existed: int = 0
    skipped: int = 0


class FirePageInput(BaseModel):
    """One page of one fire."""

    journey: str
    fire_time: datetime
    after_id: str | None = None


class FirePage(BaseModel):
    """What one page did, where the next begins, and how long it should take at the rate."""

    read: int = 0
    started: int = 0
    existed: int = 0
    skipped: int = 0
    last_id: str | None = None
    done: bool = True
    pace_seconds: float = 0.0


def occurrence(fire_time: datetime) -> str:
    """The fire time as it stands in run ids: `schedule-20261201T070000Z` (UTC)."""
    return "schedule-" + fire_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def live_schedule_plan(session: Session, journey: str) -> Plan | None:
    """The live plan of a published schedule journey; None when paused, archived or gone."""
    row = session.get(Journey, journey)
    if row is None or row.status != "published" or row.live_version is None:
        return None
    version = session.exec(select(JourneyVersion).where(
        JourneyVersion.journey == journey, JourneyVersion.version == row.live_version)).first()
    if version is None:
        return None
    plan = Plan.model_validate(version.plan)
    return plan if plan.trigger.kind == "schedule" else None


@dataclass
class ScheduleFirer:
    """Starts the runs of schedule fires through the event router."""

    engine: sa.Engine
    router: EventRouter
    settings: TriggerSettings

    def page_limit(self) -> int:
        """Customers per page: the page size, but no more than a second of starts."""
        return max(1, min(self.settings.schedule_page_size,
                          int(self.settings.schedule_start_rate)))

    def _read(self, inp: FirePageInput) -> tuple[Plan, list[str]] | None:
        with session_scope(self.engine) as session:
            plan = live_schedule_plan(session, inp.journey)
            if plan is None:
                log.info("schedule_fire_not_live", journey=inp.journey)
                return None
            assert plan.trigger.schedule is not None
            try:
                audience: Audience = resolve(session, plan.trigger.schedule.audience)
            except AudienceNotFound as exc:
                log.warning("audience_missing", journey=inp.journey, audience=exc.name)
                return None
            except AudienceInvalid:
                log.warning("audience_invalid", journey=inp.journey)
                return None
        ids = page_customer_ids(self.engine, audience, now=inp.fire_time,
                                after_id=inp.after_id, limit=self.page_limit())
        return plan, ids

    async def page(self, inp: FirePageInput) -> FirePage:
        """Start the runs of the next page of the audience."""
        found = await asyncio.to_thread(self._read, inp)
        if found is None:
            return FirePage()
        plan, ids = found
        when = occurrence(inp.fire_time)
        gate = asyncio.Semaphore(PARALLEL_STARTS)

        async def start(customer_id: str) -> str:
            event = EventIn(event_id=f"{plan.trigger.event}/{customer_id}/{when}",
                            type=plan.trigger.event, customer_id=customer_id,
                            occurred_at=inp.fire_time,
                            data={"fire_time": inp.fire_time.isoformat()})
            async with gate:
                return await self.router.start_occurrence(
                    plan, event, run_id(plan, customer_id, when))

        outcomes = await asyncio.gather(*(start(c) for c in ids))
        result = FirePage(read=len(ids), started=outcomes.count("started"),
                          existed=outcomes.count("exists"), last_id=ids[-1] if ids else None,
                          done=len(ids) < self.page_limit(),
                          pace_seconds=len(ids) / self.settings.schedule_start_rate)
        result.skipped = result.read - result.started - result.existed
        log.info("schedule_fire_page", journey=inp.journey, occurrence=when, read=result.read,
                 started=result.started, existed=result.existed, skipped=result.skipped)
        return result

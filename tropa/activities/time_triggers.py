"""The activity of the hourly date and inactivity sweep: a thin shell around the service."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel
from temporalio import activity

from tropa.services.events import EventRouter
from tropa.services.time_triggers import SweepCounts, TimeTriggerSweep


class TimeTriggersInput(BaseModel):
    """The moment the sweep runs at (the workflow's clock)."""

    now: datetime


class TimeTriggersResult(BaseModel):
    """What the sweep did: journeys swept, occurrences due, runs started or already there,
    triggers skipped (`where` false, customer gone) and occurrences too late to send."""

    journeys: int
    due: int
    started: int
    existed: int
    skipped: int
    late_skipped: int


class TimeTriggerActivities:
    """Sweep activities, bound to the database and the event router."""

    def __init__(self, engine: sa.Engine, router: EventRouter) -> None:
        self._engine = engine
        self._router = router

    @activity.defn(name="tropa.time_triggers.sweep")
    async def sweep(self, inp: TimeTriggersInput) -> TimeTriggersResult:
        """Claim and start every date and inactivity occurrence due around `now`."""
        catalogue = self._router.catalogue
        catalogue.invalidate()
        plans = list((await catalogue.current()).timed)
        sweep = TimeTriggerSweep(self._engine, self._router,
                                 progress=lambda c: activity.heartbeat(asdict(c)))
        counts: SweepCounts = await sweep.run(plans, inp.now)
        return TimeTriggersResult(**asdict(counts))

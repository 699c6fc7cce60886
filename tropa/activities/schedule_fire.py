"""The activity of a schedule fire: a thin shell around tropa.services.schedule_fire."""

from __future__ import annotations

import sqlalchemy as sa
from temporalio import activity

from tropa.services.events import EventRouter
from tropa.services.schedule_fire import FirePage, FirePageInput, ScheduleFirer
from tropa.settings import TriggerSettings


class ScheduleFireActivities:
    """Schedule fire activities, bound to the database, the router and the pacing."""

    def __init__(self, engine: sa.Engine, router: EventRouter,
                 settings: TriggerSettings) -> None:
        self._firer = ScheduleFirer(engine, router, settings)

    @activity.defn(name="tropa.schedule.fire_page")
    async def fire_page(self, inp: FirePageInput) -> FirePage:
        """Start the runs of the next page of a schedule journey's audience."""
        return await self._firer.page(inp)

"""Activities of RF segments: the daily time-passing run, routing the events of its moves."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from temporalio import activity

from tropa.logs import get_logger
from tropa.services import segments
from tropa.services.events import EventRouter, UnknownCustomer

log = get_logger("segments")
# A segment event stored this long ago and still unrouted lost its router to a crash.
STALE = timedelta(minutes=5)


class SegmentsSweepInput(BaseModel):
    """The moment the sweep counts days up to."""

    now: datetime


class SegmentsSweepResult(BaseModel):
    """What a sweep did: customers checked, moves, events routed."""

    checked: int
    moved: int
    events: int


class SegmentActivities:
    """The RF activities, bound to the database and the event router."""

    def __init__(self, engine: sa.Engine, router: EventRouter) -> None:
        self._engine = engine
        self._router = router

    @activity.defn(name="tropa.segments.time_passing")
    async def time_passing(self, inp: SegmentsSweepInput) -> SegmentsSweepResult:
        """Move customers the days moved, then route their events (and any left by a crash)."""
        now = inp.now
        checked, events = await asyncio.to_thread(segments.time_passing, self._engine, now=now)
        leftovers = await asyncio.to_thread(segments.unrouted_segment_events, self._engine,
                                            older_than=now - STALE)
        for event in [*events, *leftovers]:
            try:
                await self._router.ingest(event)
            except UnknownCustomer:
                log.warning("segment event for a customer that no longer exists",
                            event_id=event.event_id)
        moved = len({e.event_id.rsplit("-", 1)[0] for e in events})
        log.info("rf time passing", checked=checked, moved=moved, events=len(events),
                 leftovers=len(leftovers))
        return SegmentsSweepResult(checked=checked, moved=moved, events=len(events))

"""Activities of the burn sweep: burn a page of expired buckets, announce coming burns."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from temporalio import activity

from tropa.dsl.plan import EventIn
from tropa.loyalty.expiry import BurnPage, burn_expired, find_expiring, mark_announced
from tropa.loyalty.programme import load_programme
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.services.loyalty_events import emit, expiring_event, level_event
from tropa.settings import Settings
from tropa.store.db import session_scope


class BurnInput(BaseModel):
    """Burn what expired at or before `as_of`, up to `limit` buckets."""

    as_of: datetime
    limit: int = 200


class BurnOutput(BaseModel):
    """How many buckets burned, how many points, and whether more wait."""

    buckets: int
    points: int
    more: bool


class AnnounceInput(BaseModel):
    """Announce burns within `days` after `as_of`."""

    as_of: datetime
    days: int
    limit: int = 500


class ExpiryActivities:
    """The sweep's activities, bound to the database and settings."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.programme = load_programme(settings.loyalty.programme_file)
        self._catalogue = JourneyCatalogue(engine)

    def _router(self) -> EventRouter:
        return EventRouter(self.engine, activity.client(), self._catalogue,
                           activity.info().task_queue)

    @activity.defn(name="tropa.loyalty.burn_expired")
    async def burn(self, inp: BurnInput) -> BurnOutput:
        """Burn one page: an `expiry` entry per bucket; a level lost is announced."""

        def work() -> BurnPage:
            with session_scope(self.engine) as session:
                return burn_expired(session, self.programme, now=inp.as_of, limit=inp.limit)

        page = await asyncio.to_thread(work)
        events: list[EventIn] = [
            level_event(b.customer_id, self.programme.programme, b.level_changed,
                        f"expiry-{b.bucket_id}")
            for b in page.burned if b.level_changed is not None]
        if events:
            await emit(self._router(), events)
        return BurnOutput(buckets=len(page.burned), points=sum(b.amount for b in page.burned),
                          more=page.more)

    @activity.defn(name="tropa.loyalty.announce_expiring")
    async def announce(self, inp: AnnounceInput) -> int:
        """Emit `loyalty.expiring` once per customer, account and burn time."""
        if inp.days <= 0:
            return 0

        def find() -> tuple[list[EventIn], list[int]]:
            with session_scope(self.engine) as session:
                items, ids = find_expiring(session, now=inp.as_of,
                                           within=timedelta(days=inp.days), limit=inp.limit)
            return [expiring_event(i) for i in items], ids

        events, ids = await asyncio.to_thread(find)
        await emit(self._router(), events)

        def mark() -> None:
            with session_scope(self.engine) as session:
                mark_announced(session, ids, inp.as_of)

        await asyncio.to_thread(mark)
        return len(events)

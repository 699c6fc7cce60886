"""The hourly sweep of date and inactivity triggers: claim each due occurrence once, then start
its run through the event router with a synthetic trigger event.

Each journey keeps its own mark (up to when it was swept). A sweep covers (mark, now + 1 h]:
runs due within the coming hour start now with a start delay that ends at their moment, so a
10:30 or a half-hour zone is on time although the sweep runs on the hour. A sweep that comes
late (the stack was down) finds the missed moments behind `now`: with `late: send` it starts
those up to 24 h late once, with `late: skip` only those under an hour late. Claims have the
primary key (journey, customer, occurrence), and run ids contain the occurrence, so a second
sweep, a retried activity or a restarted worker never starts a run twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tropa.dsl.plan import EventIn, Plan
from tropa.logs import get_logger
from tropa.services.events import EventRouter
from tropa.store.segment_models import SweepMark
from tropa.store.trigger_models import TriggerClaim
from tropa.triggers import due as find
from tropa.triggers.calendar import LocalDay, due_days

log = get_logger("time_triggers")
CLAIMS = TriggerClaim.__table__  # type: ignore[attr-defined]
MARKS = SweepMark.__table__  # type: ignore[attr-defined]
LOOKAHEAD = timedelta(hours=1)
ON_TIME = timedelta(hours=1)
LATE_LIMIT = timedelta(hours=24)


@dataclass
class SweepCounts:
    """What one sweep did over every date and inactivity journey."""

    journeys: int = 0
    due: int = 0
    started: int = 0
    existed: int = 0
    skipped: int = 0
    late_skipped: int = 0


def run_id(plan: Plan, customer_id: str, occurrence: str) -> str:
    """`journey/<journey>/<customer>/<occurrence>`: one run per occurrence, ever."""
    return f"journey/{plan.journey}/{customer_id}/{occurrence}"


def _mark_name(plan: Plan) -> str:
    return f"trigger/{plan.journey}"


def window(engine: sa.Engine, plan: Plan, now: datetime) -> tuple[datetime, datetime]:
    """The moments this sweep covers for one journey: (since, until]."""
    with engine.connect() as conn:
        mark = conn.execute(sa.select(MARKS.c.done_until)
                            .where(MARKS.c.name == _mark_name(plan))).scalar()
    since = mark if mark is not None else now - ON_TIME
    return max(since, now - LATE_LIMIT), now + LOOKAHEAD


def set_mark(engine: sa.Engine, plan: Plan, until: datetime) -> None:
    """Remember that this journey is swept up to `until`."""
    with engine.begin() as conn:
        name = _mark_name(plan)
        if not conn.execute(sa.update(MARKS).where(MARKS.c.name == name)
                            .values(done_until=until)).rowcount:
            conn.execute(sa.insert(MARKS).values(name=name, done_until=until))


def claim(engine: sa.Engine, plan: Plan, dues: list[find.Due], now: datetime) -> list[find.Due]:
    """Claim occurrences; returns those this call claimed (others were claimed before)."""
    if not dues:
        return []
    with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(CLAIMS).on_conflict_do_nothing().returning(
            CLAIMS.c.customer_id, CLAIMS.c.occurrence)
        won = {(r.customer_id, r.occurrence) for r in conn.execute(stmt, [
            {"journey": plan.journey, "customer_id": d.customer_id, "occurrence": d.occurrence,
             "workflow_id": run_id(plan, d.customer_id, d.occurrence), "due_at": d.due_at,
             "claimed_at": now, "data": d.data} for d in dues])}
    return [d for d in dues if (d.customer_id, d.occurrence) in won]


def unstarted(engine: sa.Engine, plan: Plan, now: datetime) -> list[find.Due]:
    """Claims whose run did not start (the activity or worker died in between), to start
    now; starting one twice is harmless, its run id rejects the second start."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(CLAIMS).where(
            CLAIMS.c.journey == plan.journey, CLAIMS.c.started_at.is_(None),
            CLAIMS.c.due_at > now - LATE_LIMIT)
            .limit(find.PAGE)).mappings().all()
    return [find.Due(customer_id=r["customer_id"], occurrence=r["occurrence"],
                     due_at=find.aware(r["due_at"]), data=r["data"] or {}) for r in rows]


def mark_started(engine: sa.Engine, plan: Plan, dues: list[find.Due], now: datetime) -> None:
    """Record that these occurrences have their runs."""
    with engine.begin() as conn:
        for start in range(0, len(dues), find.PAGE):
            keys = [(d.customer_id, d.occurrence) for d in dues[start:start + find.PAGE]]
            conn.execute(sa.update(CLAIMS).where(
                CLAIMS.c.journey == plan.journey,
                sa.tuple_(CLAIMS.c.customer_id, CLAIMS.c.occurrence).in_(keys))
                .values(started_at=now))


Page = Callable[[sa.Connection, LocalDay, Any], tuple[list[find.Due], Any]]


def _pages(plan: Plan) -> list[tuple[Page, Any]]:
    trigger = plan.trigger
    if trigger.date is not None:
        date_trigger = trigger.date
        return [(lambda c, d, a: find.date_page(c, date_trigger, d, after=a), ("", -1))]
    assert trigger.inactivity is not None
    idle = trigger.inactivity
    return [(lambda c, d, a: find.inactivity_page(c, idle, d, after=a), ""),
            (lambda c, d, a: find.never_page(c, idle, d, after=a), "")]


class TimeTriggerSweep:
    """One sweep of every live date and inactivity journey at `now`."""

    def __init__(self, engine: sa.Engine, router: EventRouter,
                 progress: Callable[[SweepCounts], None] | None = None) -> None:
        self._engine = engine
        self._router = router
        self._progress = progress or (lambda _: None)

    async def run(self, plans: list[Plan], now: datetime) -> SweepCounts:
        """Sweep each journey's window, claim and start what is due."""
        counts = SweepCounts()
        for plan in plans:
            counts.journeys += 1
            await self._journey(plan, now, counts)
        log.info("time_triggers_swept", journeys=counts.journeys, due=counts.due,
                 started=counts.started, existed=counts.existed, skipped=counts.skipped,
                 late_skipped=counts.late_skipped)
        return counts

    async def _journey(self, plan: Plan, now: datetime, counts: SweepCounts) -> None:
        retry = await asyncio.to_thread(unstarted, self._engine, plan, now)
        await self._start(plan, retry, now, counts)
        since, until = await asyncio.to_thread(window, self._engine, plan, now)
        trigger = plan.trigger.date or plan.trigger.inactivity
        assert trigger is not None
        for day in due_days(trigger.at, since, until):
            for page, after in _pages(plan):
                while after is not None:
                    dues, after = await asyncio.to_thread(self._page, page, day, after)
                    fresh = [d for d in dues if self._in_time(plan, d, now, counts)]
                    counts.due += len(fresh)
                    won = await asyncio.to_thread(claim, self._engine, plan, fresh, now)
                    await self._start(plan, won, now, counts)
                    self._progress(counts)
        await asyncio.to_thread(set_mark, self._engine, plan, until)

    def _page(self, page: Page, day: LocalDay, after: Any) -> tuple[list[find.Due], Any]:
        with self._engine.connect() as conn:
            return page(conn, day, after)

    @staticmethod
    def _in_time(plan: Plan, due: find.Due, now: datetime, counts: SweepCounts) -> bool:
        trigger = plan.trigger.date or plan.trigger.inactivity
        assert trigger is not None
        late = now - due.due_at
        if late > (ON_TIME if trigger.late == "skip" else LATE_LIMIT):
            counts.late_skipped += 1
            return False
        return True

    async def _start(self, plan: Plan, dues: list[find.Due], now: datetime,
                     counts: SweepCounts) -> None:
        done: list[find.Due] = []
        for due in dues:
            event = EventIn(event_id=f"{plan.trigger.event}/{due.customer_id}/{due.occurrence}",
                            type=plan.trigger.event, customer_id=due.customer_id,
                            occurred_at=due.due_at, data=due.data)
            delay = due.due_at - now if due.due_at > now else None
            outcome = await self._router.start_occurrence(
                plan, event, run_id(plan, due.customer_id, due.occurrence), start_delay=delay)
            if outcome == "started":
                counts.started += 1
            elif outcome == "exists":
                counts.existed += 1
            else:
                counts.skipped += 1
            done.append(due)
        if done:
            await asyncio.to_thread(mark_started, self._engine, plan, done, now)

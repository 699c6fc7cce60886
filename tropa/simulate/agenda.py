"""When the simulator must stop the clock: the instants Tropa's Temporal Schedules would fire
at, for the sweeps this journey depends on (the time-skipping server does not run Schedules).

- The hourly date and inactivity sweep (`tropa-time-triggers-hourly`, on the hour). Only the
  hours that can hold a due moment of this customer matter: the hour before each local day's
  `at` o'clock in the customer's zone (that sweep starts the run with a start delay ending at
  the moment, as it does in production). The other hours' sweeps find nothing for one customer.
- The daily RF sweep (`tropa-rf-daily`, 00:15 UTC), for journeys on segment events.
- The burn sweep (`tropa-loyalty-expiry`, every `expiry_sweep_seconds` from the epoch): its
  first tick at or after each bucket's burn and each notice, read from the ledger as it grows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from tropa.dsl.durations import parse_duration
from tropa.dsl.plan import Plan
from tropa.steps.builtin import registry
from tropa.store.loyalty_models import LoyaltyBucket
from tropa.triggers import due as find
from tropa.triggers.calendar import LocalDay

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RF_DAILY_AT = time(0, 15)  # tropa.worker.schedules: "15 0 * * *"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ceil(moment: datetime, every: timedelta) -> datetime:
    """The first tick of a schedule `every` long (from the epoch) at or after `moment`."""
    steps = -((EPOCH - moment) // every)  # ceiling division of timedeltas
    return EPOCH + steps * every


@dataclass(frozen=True)
class Tick:
    """An hourly sweep worth running: at `at`, for the customer's local `day` (None: the
    sweep of the hour the simulation starts in, which always runs)."""

    at: datetime
    day: LocalDay | None = None


def time_trigger_ticks(plan: Plan, zone: str, start: datetime, until: datetime) -> Iterator[Tick]:
    """The hourly sweep's ticks that can start a run of `plan` for a customer in `zone`."""
    trigger = plan.trigger.date or plan.trigger.inactivity
    if trigger is None:
        return
    hour, minute = (int(p) for p in trigger.at.split(":"))
    tz = ZoneInfo(zone)
    yield Tick(start)
    day: date = start.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        moment = datetime.combine(day, time(hour, minute), tzinfo=tz)
        tick = _ceil(moment.astimezone(UTC), HOUR) - HOUR  # the hour whose look-ahead holds it
        if start < tick <= until:
            yield Tick(tick, LocalDay(day, [zone], {zone: moment}))
        day += timedelta(days=1)


def idle_ticks(engine: sa.Engine, plan: Plan, ticks: list[Tick], before: datetime) -> int:
    """How many of the leading `ticks` (those before `before`) would find nothing due; one
    connection for them all."""
    count = 0
    with engine.connect() as conn:
        for tick in ticks:
            if tick.at >= before or tick.day is None or _due(conn, plan, tick.day):
                break
            count += 1
    return count


def _due(conn: sa.Connection, plan: Plan, day: LocalDay) -> bool:
    if plan.trigger.date is not None:
        return bool(find.date_page(conn, plan.trigger.date, day, limit=1)[0])
    idle = plan.trigger.inactivity
    assert idle is not None
    return bool(find.inactivity_page(conn, idle, day, limit=1)[0]
                or find.never_page(conn, idle, day, limit=1)[0])


def anything_due(engine: sa.Engine, plan: Plan, day: LocalDay) -> bool:
    """Whether the sweep's own look-ups find an occurrence of `plan` on the local `day`; a
    sweep that would find none is not worth a workflow (one customer, most days)."""
    with engine.connect() as conn:
        return _due(conn, plan, day)


def step_cap(plan: Plan, notice: timedelta) -> timedelta | None:
    """How far the clock may run between two looks at the ledger, so that no burn or notice
    of a bucket this journey accrues in between is passed over: the shortest time from an
    accrual to its notice (at least a day). None: the journey accrues nothing that burns
    (purchases may accrue too, but they come with events, where the clock stops anyway)."""
    caps = []
    for step in plan.walk():
        if step.type != "accrue_bonus":
            continue
        if step.params.get("expires_at"):
            caps.append(DAY)
        elif step.params.get("expires_in"):
            caps.append(max(DAY, parse_duration(str(step.params["expires_in"])) - notice))
    return min(caps) if caps else None


def uses_segments(plan: Plan) -> bool:
    """Whether the journey starts on or listens to `segment.*` events (RF moves)."""
    events = {plan.trigger.event, *registry().events_listened(plan)}
    return any(e.startswith("segment.") for e in events)


def rf_ticks(start: datetime, until: datetime) -> Iterator[datetime]:
    """The daily RF sweep's ticks in (start, until]."""
    day = start.date()
    while True:
        tick = datetime.combine(day, RF_DAILY_AT, tzinfo=UTC)
        if tick > until:
            return
        if tick > start:
            yield tick
        day += timedelta(days=1)


def next_expiry_tick(engine: sa.Engine, after: datetime, every: timedelta,
                     notice: timedelta) -> datetime | None:
    """The burn sweep's first tick after `after` that burns a bucket or announces a burn."""
    b = LoyaltyBucket.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        burn = conn.execute(sa.select(sa.func.min(b.expires_at)).where(
            b.remaining > 0, b.expires_at.is_not(None))).scalar()
        announce = conn.execute(sa.select(sa.func.min(b.expires_at)).where(
            b.remaining > 0, b.notified_at.is_(None), b.expires_at > after,
            b.active_from <= after)).scalar() \
            if notice > timedelta(0) else None
    moments = []
    if burn is not None:
        moments.append(_aware(burn))
    if announce is not None:
        moments.append(_aware(announce) - notice)
    ticks = [_ceil(max(m, after + timedelta(microseconds=1)), every) for m in moments]
    return min(ticks) if ticks else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

"""Who is due: indexed look-ups of the customers whose date or inactivity falls on a local
day in given zones, a page at a time. Plain SQL over `customer_dates`, `customer_last_events`
and `customers`; no Temporal, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from tropa.dsl.plan import DateTrigger, InactivityTrigger
from tropa.store.trigger_models import CustomerDate, CustomerLastEvent
from tropa.triggers.calendar import LocalDay, anniversary_of, month_days, occurrence, occurs

DATES = CustomerDate.__table__  # type: ignore[attr-defined]
LAST = CustomerLastEvent.__table__  # type: ignore[attr-defined]
CUSTOMERS = sa.table("customers", sa.column("id", sa.String), sa.column("time_zone", sa.String))
PAGE = 1000


@dataclass
class Due:
    """One occurrence for one customer: when it is due and what its trigger event carries."""

    customer_id: str
    occurrence: str
    due_at: datetime
    data: dict[str, Any]


def _list_path(path: str) -> bool:
    return "[]." in path


Keyset = tuple[str, int]


def date_page(conn: sa.Connection, trigger: DateTrigger, day: LocalDay, *,
              after: Keyset = ("", -1), limit: int = PAGE) -> tuple[list[Due], Keyset | None]:
    """Occurrences of `trigger` that fire on the local `day` in its zones, after the keyset
    `after` (customer id, item); returns them and the next keyset (None at the end)."""
    anniversary = anniversary_of(trigger, day.day)
    rows = conn.execute(
        sa.select(DATES.c.customer_id, DATES.c.item, DATES.c.value, DATES.c.item_data,
                  DATES.c.time_zone)
        .where(DATES.c.path == trigger.path,
               DATES.c.month_day.in_(month_days(trigger, anniversary)),
               DATES.c.time_zone.in_(day.zones),
               sa.tuple_(DATES.c.customer_id, DATES.c.item) > sa.tuple_(*after))
        .order_by(DATES.c.customer_id, DATES.c.item).limit(limit)).all()
    listed = _list_path(trigger.path)
    found = [Due(customer_id=r.customer_id,
                 occurrence=occurrence(trigger, anniversary, r.item if listed else None),
                 due_at=day.moments[r.time_zone],
                 data={"date": _iso(r.value), "year": anniversary.year,
                       "item": r.item_data if listed else None})
             for r in rows if occurs(trigger, _day(r.value), anniversary)]
    following = (rows[-1].customer_id, rows[-1].item) if len(rows) == limit else None
    return found, following


def inactivity_page(conn: sa.Connection, trigger: InactivityTrigger, day: LocalDay, *,
                    after: str = "", limit: int = PAGE) -> tuple[list[Due], str | None]:
    """Customers whose last `trigger.event` fell on the local day `trigger.days` before `day`
    in their zone, after customer id `after`; returns them and the next keyset."""
    last_day = day.day - timedelta(days=trigger.days)
    starts = [datetime.combine(last_day, time(0), tzinfo=ZoneInfo(z)) for z in day.zones]
    low, high = min(starts), max(starts) + timedelta(days=1)
    rows = conn.execute(
        sa.select(LAST.c.customer_id, LAST.c.last_at, CUSTOMERS.c.time_zone)
        .join(CUSTOMERS, CUSTOMERS.c.id == LAST.c.customer_id)
        .where(LAST.c.event_type == trigger.event, LAST.c.last_at >= low,
               LAST.c.last_at < high, CUSTOMERS.c.time_zone.in_(day.zones),
               LAST.c.customer_id > after)
        .order_by(LAST.c.customer_id).limit(limit)).all()
    found = []
    for r in rows:
        last_at = aware(r.last_at)
        if last_at.astimezone(ZoneInfo(r.time_zone)).date() == last_day:
            found.append(Due(customer_id=r.customer_id,
                             occurrence=last_at.strftime("%Y%m%dT%H%M%SZ"),
                             due_at=day.moments[r.time_zone],
                             data={"last_at": last_at.isoformat(), "days": trigger.days}))
    following = rows[-1].customer_id if len(rows) == limit else None
    return found, following


def never_page(conn: sa.Connection, trigger: InactivityTrigger, day: LocalDay, *,
               after: str = "", limit: int = PAGE) -> tuple[list[Due], str | None]:
    """Customers without any `trigger.event` whose registration (registered_at, else the day
    the customer was created) fell on the local day `trigger.days` before `day`."""
    since = day.day - timedelta(days=trigger.days)
    registered = DATES.alias("registered")
    had_event = sa.exists().where(LAST.c.customer_id == DATES.c.customer_id,
                                  LAST.c.event_type == trigger.event)
    has_registration = sa.exists().where(registered.c.customer_id == DATES.c.customer_id,
                                         registered.c.path == "customer.registered_at")
    rows = conn.execute(
        sa.select(DATES.c.customer_id, DATES.c.path, DATES.c.time_zone)
        .where(DATES.c.path.in_(("customer.registered_at", "customer.created_at")),
               DATES.c.month_day == since.strftime("%m-%d"), DATES.c.value == since,
               DATES.c.time_zone.in_(day.zones), DATES.c.customer_id > after,
               ~had_event,
               sa.or_(DATES.c.path == "customer.registered_at", ~has_registration))
        .order_by(DATES.c.customer_id).limit(limit)).all()
    found = [Due(customer_id=r.customer_id, occurrence=f"since-{since.isoformat()}",
                 due_at=day.moments[r.time_zone],
                 data={"last_at": None, "since": since.isoformat(), "days": trigger.days})
             for r in rows]
    following = rows[-1].customer_id if len(rows) == limit else None
    return found, following


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _iso(value: Any) -> str:
    return _day(value).isoformat()


def aware(value: Any) -> datetime:
    """A stored date-time as an aware one (SQLite gives back text or naive values)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))

"""When a date or inactivity trigger is due: local days and moments per time zone, month-days
that fall on a day (Feb 29 on Feb 28 in other years, the 31st on a short month's last day), and
the occurrence that names one run. Pure functions, no I/O."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from tropa.dsl.plan import DateTrigger


@cache
def all_zones() -> tuple[tuple[str, ZoneInfo], ...]:
    """Every IANA zone, loaded once per process (ZoneInfo keeps only a few in its cache)."""
    return tuple((name, ZoneInfo(name)) for name in sorted(available_timezones() | {"UTC"}))


@dataclass
class LocalDay:
    """A local calendar day whose `at` moment falls in the window, the zones it falls in,
    and the moment (UTC) in each of them."""

    day: date
    zones: list[str] = field(default_factory=list)
    moments: dict[str, datetime] = field(default_factory=dict)


@lru_cache(maxsize=64)
def due_days(at: str, since: datetime, until: datetime) -> tuple[LocalDay, ...]:
    """The local days, grouped over zones, whose `at` o'clock lies in (since, until]; kept
    for journeys that share a time and a window (read, never change, the result)."""
    hour, minute = (int(p) for p in at.split(":"))
    local_time = time(hour, minute)
    days: dict[date, LocalDay] = {}
    for name, zone in all_zones():
        first = since.astimezone(zone).date() - timedelta(days=1)
        last = until.astimezone(zone).date() + timedelta(days=1)
        day = first
        while day <= last:
            moment = datetime.combine(day, local_time, tzinfo=zone)
            if since < moment <= until:
                entry = days.setdefault(day, LocalDay(day))
                entry.zones.append(name)
                entry.moments[name] = moment
            day += timedelta(days=1)
    return tuple(days[d] for d in sorted(days))


def _last_day(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def month_days(trigger: DateTrigger, anniversary: date) -> list[str]:
    """The stored 'MM-DD' values whose occurrence falls on `anniversary`."""
    if trigger.every == "month":
        days = range(anniversary.day, 32) if _last_day(anniversary) else [anniversary.day]
        return [f"{m:02d}-{d:02d}" for m in range(1, 13) for d in days]
    found = [anniversary.strftime("%m-%d")]
    if trigger.every == "year" and (anniversary.month, anniversary.day) == (2, 28) \
            and not calendar.isleap(anniversary.year):
        found.append("02-29")
    return found


def anniversary_of(trigger: DateTrigger, fire_day: date) -> date:
    """The date's occurrence whose trigger fires on the local day `fire_day`."""
    return fire_day - timedelta(days=trigger.offset_days)


def occurs(trigger: DateTrigger, value: date, anniversary: date) -> bool:
    """Whether a stored date has an occurrence on `anniversary` (its month-day matched)."""
    if trigger.every == "once":
        return value == anniversary
    return value < anniversary


def occurrence(trigger: DateTrigger, anniversary: date, item: int | None) -> str:
    """The occurrence in run ids and claims: `2027`, `2027-05` or `once`, `-i<n>` for items."""
    base = {"year": f"{anniversary.year}", "month": f"{anniversary:%Y-%m}",
            "once": "once"}[trigger.every]
    return base if item is None else f"{base}-i{item}"

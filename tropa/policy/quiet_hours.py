"""Quiet hours in the customer's time zone: a send inside them waits for their end."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _clock(text: str) -> time:
    hour, minute = (int(p) for p in text.split(":"))
    return time(hour, minute)


def quiet_until(now: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """When the quiet window around `now` ends (UTC), or None when `now` is outside it.

    `start` after `end` (21:00 to 09:00) is a window across midnight.
    """
    if not start or not end or start == end:
        return None
    local = now.astimezone(zone)
    begin, finish = _clock(start), _clock(end)
    here = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if begin < finish:
        inside = begin <= here < finish
        end_day = local.date()
    else:
        inside = here >= begin or here < finish
        end_day = local.date() + timedelta(days=1) if here >= begin else local.date()
    if not inside:
        return None
    # Built as a local wall time, so a DST change inside the night is handled by zoneinfo.
    return datetime.combine(end_day, finish, tzinfo=zone).astimezone(UTC)


QuietSpan = tuple[ZoneInfo, str, str]
"""A quiet window: the zone it is read in, its start and its end (HH:MM)."""
MAX_HOPS = 8


def quiet_until_all(now: datetime, windows: list[QuietSpan]) -> datetime | None:
    """When `now` is first outside every window (UTC), or None when it is outside them all.

    Several windows apply at once (the system's, the journey's, the step's): the stricter
    wins, so a send held by one is not let out into another. Each hop moves to the end of
    a window, so a few hops settle any real set of windows; MAX_HOPS bounds odd ones.
    """
    at = now
    for _ in range(MAX_HOPS):
        later = [end for zone, start, finish in windows
                 if (end := quiet_until(at, zone, start, finish)) is not None]
        if not later:
            break
        at = max(later)
    return at if at != now else None

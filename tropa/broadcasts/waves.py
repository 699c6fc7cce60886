"""When each recipient's message goes out: at the start, or at a local time of day in the
recipient's own time zone (one wave per zone)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tropa.customers.view import BadTimeZone, customer_zone

_BUCKETS = 10_000


def local_send_at(zone_name: str, at: str, not_before: datetime) -> datetime:
    """The first moment at or after `not_before` when the clock in `zone_name` shows `at`
    (HH:MM). A zone that is not an IANA name counts as UTC, so the customer still gets the
    message once; a local time skipped by a DST change moves on by the gap."""
    try:
        zone: ZoneInfo = customer_zone(zone_name)
    except BadTimeZone:
        zone = ZoneInfo("UTC")
    hour, minute = (int(part) for part in at.split(":"))
    local_day = not_before.astimezone(zone).date()
    for offset in range(3):
        day = local_day + timedelta(days=offset)
        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
        # Round trip through UTC normalises a wall time that does not exist (spring forward).
        moment = wall.astimezone(UTC)
        if moment >= not_before:
            return moment
    raise AssertionError("a time of day recurs within three days")  # pragma: no cover


def in_holdout(broadcast_id: str, customer_id: str, percent: float) -> bool:
    """Whether the customer is in the broadcast's holdout: a hash, so the answer is the same
    on every retry, snapshot resume or recount; each broadcast draws its own group."""
    if percent <= 0:
        return False
    seed = f"{broadcast_id}/{customer_id}".encode()
    point = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % _BUCKETS
    return point < round(percent * _BUCKETS / 100)

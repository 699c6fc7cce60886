"""Absolute moments in journeys (`wait_until: {timestamp: ...}`): with a UTC offset, and
between `EARLIEST` and `LATEST`, so every moment converts to UTC and makes a valid timer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)


def _bounded(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the timestamp needs a UTC offset, e.g. 2026-12-01T10:00:00+03:00")
    # Compare before converting: converting 9999-12-31T23:59:59-01:00 to UTC overflows.
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"the timestamp must lie between {EARLIEST:%Y-%m-%d} and "
                         f"{LATEST:%Y-%m-%d} (UTC)")
    return value


Moment = Annotated[datetime, AfterValidator(_bounded)]
"""An aware datetime between EARLIEST and LATEST."""

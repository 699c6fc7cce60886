"""Time helpers: every datetime Tropa makes is timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def ensure_aware(value: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns naive values for UTC columns)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

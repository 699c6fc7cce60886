"""Time helpers: every datetime Tropa makes is timezone-aware.

"Now" has one source for all code outside workflows. It is the wall clock, unless a block runs
`following(source)`: `tropa simulate` makes the code it runs (activities, sweeps, event intake,
the in-process sandbox) read the time-skipping server's clock that way. The source is
context-local, so a simulation inside the API process never moves the clock of the requests
it serves; threads started through `asyncio.to_thread`, anyio and Temporal's activity executor
carry the context along.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

Source = Callable[[], datetime]
_source: ContextVar[Source | None] = ContextVar("tropa_clock_source", default=None)


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware (the simulated now inside a simulation)."""
    source = _source.get()
    return datetime.now(UTC) if source is None else source()


@contextmanager
def following(source: Source) -> Iterator[None]:
    """Within the block (and the tasks and threads it starts), `utcnow()` asks `source`."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


def ensure_aware(value: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns naive values for UTC columns)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

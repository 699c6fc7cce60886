"""Waiting on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T] | T], *, timeout: float = 30.0,
                     interval: float = 0.1, message: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        result = probe()
        last = await result if asyncio.iscoroutine(result) else result  # type: ignore[assignment]
        if last:
            return last  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)


def eventually_sync(probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1,
                    message: str = "condition") -> T:
    """`eventually` for tests without an event loop (processes, database sessions)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout}s; last value: {last!r}")
        time.sleep(interval)

"""Routing loyalty happenings (level changes, coming burns) through the normal router."""

from __future__ import annotations

from tropa.dsl.plan import EventIn
from tropa.loyalty.events import expiring_event, level_event
from tropa.services.events import EventRouter, UnknownCustomer


async def emit(router: EventRouter, events: list[EventIn]) -> None:
    """Route each event once (the router stores event ids); a customer gone meanwhile is
    skipped, not an error."""
    for event in events:
        try:
            await router.ingest(event)
        except UnknownCustomer:
            continue


__all__ = ["emit", "expiring_event", "level_event"]

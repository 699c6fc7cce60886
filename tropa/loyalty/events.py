"""Loyalty happenings as events for the router: level changes and coming burns."""

from __future__ import annotations

from tropa.clock import utcnow
from tropa.dsl.plan import EventIn
from tropa.loyalty.expiry import Expiring
from tropa.loyalty.models import LevelChange


def level_event(customer_id: str, programme: str, change: LevelChange,
                cause: str) -> EventIn:
    """`loyalty.level_changed`; the id derives from the operation that caused it."""
    return EventIn(event_id=f"loyalty.level_changed/{cause}", type="loyalty.level_changed",
                   customer_id=customer_id, occurred_at=utcnow(),
                   data={"programme": programme, "from": change.from_, "to": change.to})


def expiring_event(item: Expiring) -> EventIn:
    """`loyalty.expiring`: points of a customer that burn at `data.expires_at`."""
    return EventIn(event_id=item.event_id(), type="loyalty.expiring",
                   customer_id=item.customer_id, occurred_at=utcnow(), data=item.event_data())

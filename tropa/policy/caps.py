"""Frequency caps: the system's across all journeys (at most N messages of a category per
channel and window), and a journey's own (at most N of its messages per window)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, func, select

from tropa.settings import CapRule
from tropa.store.models import Message

# Messages that count against a cap: on their way or sent. Suppressed and cancelled ones
# never reached the customer.
COUNTED = ("queued", "retrying", "accepted", "delivered", "undelivered")


def cap_reached(session: Session, *, customer_id: str, channel: str, category: str,
                now: datetime, rules: list[CapRule]) -> CapRule | None:
    """The first rule this message would break, or None."""
    for rule in rules:
        if rule.category != category or rule.channel not in ("*", "all", channel):
            continue
        query = select(func.count()).select_from(Message).where(
            Message.customer_id == customer_id,
            Message.category == category,
            Message.status.in_(COUNTED),  # type: ignore[attr-defined]
            Message.created_at >= now - timedelta(seconds=rule.window_seconds),
        )
        if rule.channel != "all":
            query = query.where(Message.channel == channel)
        if session.exec(query).one() >= rule.max:
            return rule
    return None


def journey_cap_reached(session: Session, *, customer_id: str, journey: str, now: datetime,
                        max_messages: int, window_seconds: int) -> bool:
    """Whether the customer has had `max_messages` of this journey's messages (any channel,
    any category, any of its runs and versions) within the window."""
    count = session.exec(select(func.count()).select_from(Message).where(
        Message.customer_id == customer_id,
        Message.journey == journey,
        Message.status.in_(COUNTED),  # type: ignore[attr-defined]
        Message.created_at >= now - timedelta(seconds=window_seconds),
    )).one()
    return count >= max_messages


def lock_customer(session: Session, customer_id: str) -> None:
    """Serialise cap checks of one customer, so two journeys sending at the same moment
    cannot both take the last slot: a no-op UPDATE of the customer row takes SQLite's write
    lock, or PostgreSQL's row lock, before the count."""
    session.exec(sa.text("UPDATE customers SET updated_at = updated_at WHERE id = :c")  # type: ignore[call-overload]
                 .bindparams(c=customer_id))

"""Frequency caps: the system's across all journeys (at most N messages of a category per
channel and window), and a journey's own (at most N of its messages per window)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from tropa.settings import CapRule
from tropa.store.models import Customer, Message

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


def caps_reached(session: Session, *, customer_ids: list[str], channel: str, category: str,
                 now: datetime, rules: list[CapRule]) -> dict[str, CapRule]:
    """`cap_reached` for many customers at once: one counting query per rule, not one per
    customer; the first rule each customer would break."""
    found: dict[str, CapRule] = {}
    if not customer_ids:
        return found
    for rule in rules:
        if rule.category != category or rule.channel not in ("*", "all", channel):
            continue
        query = select(Message.customer_id, func.count()).where(
            col(Message.customer_id).in_(customer_ids),
            Message.category == category,
            col(Message.status).in_(COUNTED),
            Message.created_at >= now - timedelta(seconds=rule.window_seconds),
        ).group_by(col(Message.customer_id))
        if rule.channel != "all":
            query = query.where(Message.channel == channel)
        for customer_id, count in session.exec(query).all():
            if count >= rule.max and customer_id not in found:
                found[customer_id] = rule
    return found


def lock_customers(session: Session, customer_ids: list[str]) -> None:
    """`lock_customer` for many customers, in id order so two batches never deadlock; held
    to the end of the transaction like the single lock."""
    if not customer_ids:
        return
    if session.get_bind().dialect.name == "sqlite":
        # One writer at a time: any write takes the database's lock.
        lock_customer(session, customer_ids[0])
        return
    session.exec(select(Customer.id).where(col(Customer.id).in_(sorted(customer_ids)))
                 .order_by(col(Customer.id)).with_for_update())

"""Unsubscribe: a customer withdraws marketing consent for one channel through a link."""

from __future__ import annotations

from sqlmodel import Session

from tropa.clock import utcnow
from tropa.policy.unsubscribe import Unsubscriber, read_token
from tropa.services import customers
from tropa.store.models import ConsentChange, Customer

SOURCES = ("unsubscribe:one_click", "unsubscribe:page")


def unsubscribe(session: Session, *, secret: str, token: str, source: str
                ) -> tuple[Customer, Unsubscriber]:
    """Withdraw the marketing consent the token names and record where it came from.

    Raises TokenInvalid for a token this key did not make and CustomerNotFound when the
    customer is gone. Repeating it is harmless: the consent stays withdrawn."""
    who = read_token(secret, token)
    customer = customers.set_consent(session, customer_id=who.customer_id,
                                     category="marketing", channel=who.channel, granted=False)
    session.add(ConsentChange(customer_id=who.customer_id, category="marketing",
                              channel=who.channel, granted=False, source=source,
                              recorded_at=utcnow()))
    session.flush()
    return customer, who

"""Helpers that drive journeys the way the product does: through its own services."""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlmodel import select

from tropa.services import journeys
from tropa.store.db import session_scope
from tropa.store.models import Customer


def publish_yaml(engine: sa.Engine, text: str) -> str:
    """Store and publish a journey; returns its version."""
    with session_scope(engine) as session:
        row = journeys.create_version(session, text, "<test>")
        journeys.publish(session, row.journey, row.version)
        return row.version


def add_customer(engine: sa.Engine, customer_id: str, **fields: object) -> None:
    """Store a customer with sensible defaults (a valid Russian mobile, consents given)."""
    defaults: dict[str, object] = {
        "first_name": "Anna",
        "phone": "+79161234567",
        "phone_verified": True,
        "email": "anna@example.com",
        "email_verified": True,
        "time_zone": "Europe/Moscow",
        "consents": {"marketing": {"sms": True, "email": True}},
    }
    with session_scope(engine) as session:
        # Phones and emails are unique across customers: a second customer with the defaults
        # gets contacts of its own, derived from its id.
        tag = zlib.crc32(customer_id.encode())
        for name, own in (("phone", f"+7916{tag % 10_000_000:07d}"),
                          ("email", f"anna+{tag:08x}@example.com")):
            if name not in fields and session.exec(
                    select(Customer.id).where(getattr(Customer, name) == defaults[name])).first():
                defaults[name] = own
        session.add(Customer(id=customer_id, **{**defaults, **fields}))

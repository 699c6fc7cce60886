"""The customer as templates and conditions see it, "load or fail", and the customer's zone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import object_session
from sqlmodel import Session, col, select

from tropa.customers.identifiers import CustomerNotFound, canonical_id
from tropa.store.models import Customer
from tropa.store.segment_models import CustomerSegment


class BadTimeZone(ValueError):
    """A stored time zone name that is not an IANA zone: a data error, never transient."""


def load_or_fail(session: Session, customer_id: str) -> Customer:
    """The customer (following a merge to the survivor), or CustomerNotFound naming the id."""
    found = canonical_id(session, customer_id)
    customer = session.get(Customer, found) if found is not None else None
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id!r} does not exist; create it with "
                               "PUT /v1/customers/{id}")
    return customer


def customer_zone(name: str) -> ZoneInfo:
    """The customer's IANA zone; BadTimeZone for a name that is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadTimeZone(f"unknown time zone {name!r}; use an IANA name like "
                          "Europe/Moscow") from exc


def customer_view(customer: Customer, segments: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """Fields templates may use; stays inside activities, never in workflow history.
    `segments` (from `segments_of`) saves a batch the query per customer."""
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "first_name": customer.first_name or "",
        "last_name": customer.last_name or "",
        "phone": customer.phone,
        "phone_verified": customer.phone_verified,
        "email": customer.email,
        "email_verified": customer.email_verified,
        "time_zone": customer.time_zone,
        "locale": customer.locale,
        "birthday": customer.birthday,
        "registered_at": customer.registered_at,
        "tags": list(customer.tags),
        "attributes": dict(customer.attributes),
        "consents": dict(customer.consents),
        "segment": (segments.get(customer.id) if segments is not None
                    else _segment(customer)),
    }


def segments_of(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """The RF segments of these customers in one query (those without one are absent)."""
    wanted = list(ids)
    if not wanted:
        return {}
    return {row.customer_id: row.segment for row in session.exec(
        select(CustomerSegment).where(col(CustomerSegment.customer_id).in_(wanted)))}


def _segment(customer: Customer) -> str | None:
    # The RF segment is kept in its own table. A mapped customer reads it in its own
    # session; a Core row (event intake reads customers in bulk) carries it as a column.
    state = sa.inspect(customer, raiseerr=False)
    if state is None:
        segment = getattr(customer, "segment", None)
        return str(segment) if segment is not None else None
    session = object_session(customer)
    if session is None:
        return None
    row = session.get(CustomerSegment, customer.id)
    return row.segment if row is not None else None

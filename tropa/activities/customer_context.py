"""The customers domain's view, "load or fail" and zone, as activities raise them to Temporal."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from tropa.customers import view
from tropa.customers.identifiers import CustomerNotFound
from tropa.customers.view import customer_view
from tropa.store.models import Customer

__all__ = ["customer_view", "customer_zone", "load_customer"]


def load_customer(session: Session, customer_id: str) -> Customer:
    """The customer, or a non-retryable error naming the missing id."""
    try:
        return view.load_or_fail(session, customer_id)
    except CustomerNotFound as exc:
        raise ApplicationError(str(exc), type="CustomerNotFound", non_retryable=True) from exc


def customer_zone(name: str) -> ZoneInfo:
    """The customer's IANA zone; a bad name is a data error, not a transient one."""
    try:
        return view.customer_zone(name)
    except view.BadTimeZone as exc:
        raise ApplicationError(str(exc), type="BadTimeZone", non_retryable=True) from exc

"""The `customer` a template or condition sees, built from the stored customer."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from tropa.store.models import Customer


def load_customer(session: Session, customer_id: str) -> Customer:
    """The customer, or a non-retryable error naming the missing id."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise ApplicationError(
            f"customer {customer_id!r} does not exist; create it with PUT /v1/customers/{{id}}",
            type="CustomerNotFound",
            non_retryable=True,
        )
    return customer


def customer_view(customer: Customer) -> dict[str, Any]:
    """Fields templates may use; stays inside activities, never in workflow history."""
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
        "tags": list(customer.tags),
        "attributes": dict(customer.attributes),
        "consents": dict(customer.consents),
    }

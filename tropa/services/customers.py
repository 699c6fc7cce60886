"""Customers: create, replace, patch, find; consents, tags and attributes; bulk upsert.

Every write locks the customer's row first (`lock_customer_for_update`), so concurrent
writes never lose each other's changes; a client that read-modify-writes passes the version
it read (`Expected`, from If-Match) and gets VersionMismatch when the customer moved on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.customers.attributes import AttributeInvalid, clean_attributes, render_path
from tropa.customers.identifiers import CustomerNotFound as CustomerNotFound
from tropa.customers.identifiers import (
    IdentifierInvalid,
    IdentifierTaken,
    check_unique,
    clean_identifiers,
)
from tropa.store.customer_lock import lock_customer_for_update
from tropa.store.db import session_scope
from tropa.store.models import Customer


class ContactRejected(ValueError):
    """A phone or email that cannot be normalised; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Any identifier (external id, phone, email) taken by another customer: a 409.
ExternalIdTaken = IdentifierTaken


@dataclass(frozen=True)
class Expected:
    """The versions a client read-modify-writes from (If-Match); any existing version when
    `any_version` (If-Match: *)."""

    versions: frozenset[int] = frozenset()
    any_version: bool = False

    def allows(self, version: int) -> bool:
        """Whether the stored version is one the client expects."""
        return self.any_version or version in self.versions


class VersionMismatch(ValueError):
    """The customer is not at the version the client expects; `current` is None when the
    customer does not exist."""

    def __init__(self, customer_id: str, current: int | None) -> None:
        where = ("it does not exist yet (leave If-Match out to create it)" if current is None
                 else f'it is now at version {current} (ETag "{current}")')
        super().__init__(f"customer {customer_id!r} changed since you read it: {where}; "
                         "GET it again, reapply your change and send the new ETag in If-Match")
        self.current = current


def normalise_contacts(data: dict[str, Any]) -> dict[str, Any]:
    """Phones to E.164 and emails normalised, in place; raises ContactRejected."""
    try:
        if data.get("attributes"):
            data["attributes"] = clean_attributes(data["attributes"])
        return clean_identifiers(data)
    except IdentifierInvalid as exc:
        raise ContactRejected(exc.field, str(exc)) from exc
    except AttributeInvalid as exc:
        raise ContactRejected(render_path(exc.loc), exc.message) from exc


def get(session: Session, *, customer_id: str) -> Customer:
    """One customer, or CustomerNotFound."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id!r} does not exist; create it with "
                               f"PUT /v1/customers/{customer_id}")
    return customer


def _check_identifiers(session: Session, customer_id: str, data: dict[str, Any]) -> None:
    check_unique(session, customer_id, data)


def _flush(session: Session, _external_id: str | None = None) -> None:
    # The unique indexes settle a race the check above cannot see.
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise IdentifierTaken("an identifier (external_id, phone or email)", None) from exc


def locked(session: Session, customer_id: str, expected: Expected | None = None) -> Customer:
    """The customer, locked for this transaction and at the expected version; raises
    CustomerNotFound or VersionMismatch."""
    customer = lock_customer_for_update(session, customer_id)
    if customer is None:
        return get(session, customer_id=customer_id)  # raises CustomerNotFound
    if expected is not None and not expected.allows(customer.version):
        raise VersionMismatch(customer_id, customer.version)
    return customer


def upsert(session: Session, *, customer_id: str, data: dict[str, Any],
           expected: Expected | None = None) -> tuple[Customer, bool]:
    """Create or replace a customer; returns it and whether it is new."""
    data = normalise_contacts(dict(data))
    _check_identifiers(session, customer_id, data)
    customer = lock_customer_for_update(session, customer_id)
    if customer is None:
        if expected is not None:
            raise VersionMismatch(customer_id, None)
        customer = _create(session, customer_id, data)
        if customer is not None:
            return customer, True
        # Another request created it a moment ago: replace what it wrote.
        customer = locked(session, customer_id)
    elif expected is not None and not expected.allows(customer.version):
        raise VersionMismatch(customer_id, customer.version)
    for name, value in data.items():
        setattr(customer, name, value)
    customer.updated_at = utcnow()
    session.add(customer)
    _flush(session, data.get("external_id"))
    return customer, False


def _create(session: Session, customer_id: str, data: dict[str, Any]) -> Customer | None:
    """Insert a new customer; None when another transaction inserted it first."""
    customer = Customer(id=customer_id, **data)
    if session.get_bind().dialect.name == "sqlite":
        # The write lock taken by lock_customer_for_update keeps every other writer out.
        session.add(customer)
        _flush(session, data.get("external_id"))
        return customer
    try:
        with session.begin_nested():
            session.add(customer)
    except IntegrityError as exc:
        if session.get(Customer, customer_id) is None:  # not the id: an identifier clashed
            raise IdentifierTaken("an identifier (external_id, phone or email)",
                                  None) from exc
        return None
    return customer


def update(session: Session, *, customer_id: str, changes: dict[str, Any],
           expected: Expected | None = None) -> Customer:
    """Change only the given fields."""
    changes = normalise_contacts(dict(changes))
    customer = locked(session, customer_id, expected)
    _check_identifiers(session, customer_id, changes)

    def change(c: Customer) -> None:
        for name, value in changes.items():
            setattr(c, name, value)

    return _save(session, customer, change)


def _save(session: Session, customer: Customer, change: Callable[[Customer], object]) -> Customer:
    change(customer)
    customer.updated_at = utcnow()
    session.add(customer)
    _flush(session, customer.external_id)
    return customer


def find(session: Session, *, phone: str | None = None, email: str | None = None,
         external_id: str | None = None, limit: int = 50) -> list[Customer]:
    """Customers matching every given contact or id, oldest first."""
    query = select(Customer)
    if phone is not None:
        query = query.where(Customer.phone == normalise_contacts({"phone": phone})["phone"])
    if email is not None:
        query = query.where(Customer.email == normalise_contacts({"email": email})["email"])
    if external_id is not None:
        query = query.where(Customer.external_id == external_id)
    return list(session.exec(query.order_by(col(Customer.created_at), col(Customer.id))
                             .limit(limit)))


def set_consent(session: Session, *, customer_id: str, category: str, channel: str,
                granted: bool, expected: Expected | None = None) -> Customer:
    """Grant or withdraw consent to one category of messages over one channel."""
    customer = locked(session, customer_id, expected)

    def change(c: Customer) -> None:
        # A new dict, so the JSON column is seen as changed.
        consents = {k: dict(v) for k, v in c.consents.items()}
        consents.setdefault(category, {})[channel] = granted
        c.consents = consents

    return _save(session, customer, change)


def change_tags(session: Session, *, customer_id: str, add: Iterable[str],
                remove: Iterable[str], expected: Expected | None = None) -> Customer:
    """Add and remove tags, keeping their order and no duplicates."""
    customer = locked(session, customer_id, expected)
    gone = set(remove)

    def change(c: Customer) -> None:
        tags = [t for t in c.tags if t not in gone]
        tags += [t for t in dict.fromkeys(add) if t not in tags and t not in gone]
        c.tags = tags

    return _save(session, customer, change)


def merge_attributes(session: Session, *, customer_id: str, values: dict[str, Any],
                     expected: Expected | None = None) -> Customer:
    """Set attributes; a null value removes the attribute."""
    customer = locked(session, customer_id, expected)
    try:
        values = clean_attributes(values)
    except AttributeInvalid as exc:
        raise ContactRejected(render_path(exc.loc), exc.message) from exc

    def change(c: Customer) -> None:
        merged = {**c.attributes, **values}
        c.attributes = {k: v for k, v in merged.items() if v is not None}

    return _save(session, customer, change)


@dataclass
class BulkRow:
    """One customer of a bulk upsert after validation."""

    index: int
    customer_id: str
    data: dict[str, Any]


def bulk_upsert(engine: sa.Engine, rows: list[BulkRow]) -> dict[int, tuple[str, str | None]]:
    """Upsert many; per index ("created" | "updated" | "rejected", reason)."""
    outcome: dict[int, tuple[str, str | None]] = {}
    try:
        with session_scope(engine) as session:
            # Row locks in id order, so two bulk requests never wait on each other; a
            # customer given twice keeps request order (the sort is stable).
            for row in sorted(rows, key=lambda r: r.customer_id):
                outcome[row.index] = _bulk_one(session, row)
    except (ExternalIdTaken, sa.exc.OperationalError):
        # A race with another writer (an external_id taken meanwhile, or PostgreSQL breaking
        # a deadlock on the external_id index): one transaction per customer instead.
        outcome = {}
        for row in rows:
            try:
                with session_scope(engine) as session:
                    outcome[row.index] = _bulk_one(session, row)
            except ExternalIdTaken as exc:
                outcome[row.index] = ("rejected", str(exc))
    return outcome


def _bulk_one(session: Session, row: BulkRow) -> tuple[str, str | None]:
    try:
        with session.no_autoflush:
            _check_identifiers(session, row.customer_id, row.data)
    except ExternalIdTaken as exc:
        return "rejected", str(exc)
    _, created = upsert(session, customer_id=row.customer_id, data=row.data)
    return ("created" if created else "updated"), None

"""Serialising writes to one customer on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session


def lock_customer(session: Session, customer_id: str) -> bool:
    """Take the customer's row lock (PostgreSQL) or the write lock (SQLite) for the rest of the
    transaction, before anything is read; False when there is no such customer."""
    result = session.execute(sa.text("UPDATE customers SET updated_at = updated_at "
                                     "WHERE id = :c").bindparams(c=customer_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]

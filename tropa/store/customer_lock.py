"""Lock one customer's row for the rest of the transaction, on SQLite and PostgreSQL.

Every write to a customer (profile, consents, tags, attributes, bulk, journey steps, and
whatever cards, orders, loyalty or merge add) reads the customer through
`lock_customer_for_update` first, changes it, and commits: the read, the change and the
write happen under one lock, so no concurrent write is lost.

On top of the lock, `Customer.version` is SQLAlchemy's version counter: every ORM update
of a customer bumps it and checks it in its WHERE clause, so a write that skipped the lock
fails with `StaleDataError` instead of silently overwriting a newer row. The API shows the
version as the customer's ETag.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from tropa.store.models import Customer


def lock_customer_for_update(session: Session, customer_id: str) -> Customer | None:
    """The customer, read afresh and locked until the session's transaction ends; None when
    there is no such customer.

    PostgreSQL: `SELECT ... FOR UPDATE`; other writers of this customer wait for our commit.
    SQLite locks the whole database for writing: a no-op UPDATE takes that lock at once
    (the first statement of the write transaction, so SQLite's busy timeout applies and no
    stale snapshot can be upgraded), then the row is read.

    Objects already in the session are refreshed, so a customer read earlier in the same
    session is current after this call; call it before changing the customer (a change made
    before would be overwritten by the fresh row). To lock several customers, lock them in a
    sorted order, so two transactions never wait on each other.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().execute(sa.text("UPDATE customers SET id = id WHERE id = :c"),
                                     {"c": customer_id})
        query = select(Customer).where(Customer.id == customer_id)
    else:
        query = select(Customer).where(Customer.id == customer_id).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).first()

"""Customers found by any identifier; every identifier unique across customers (SQLite, PG)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tropa.customers.identifiers import (
    CustomerNotFound,
    Identifier,
    IdentifierTaken,
    check_card_free,
    resolve,
)
from tropa.services import customers as service
from tropa.store.customer_models import Card
from tropa.store.db import session_scope


def test_resolve_by_every_identifier(any_engine: sa.Engine) -> None:
    with session_scope(any_engine) as session:
        service.upsert(session, customer_id="c-1", data={
            "external_id": "crm-1", "phone": "8 (916) 765-43-21", "email": "Olga@Example.COM"})
        session.add(Card(customer_id="c-1", barcode="2900001234567", track=";2900001234567=1?"))
    with session_scope(any_engine) as session:
        for kind, value in (("id", "c-1"), ("external_id", "crm-1"), ("phone", "+7 916 765 43 21"),
                            ("phone", "89167654321"), ("email", "Olga@example.com"),
                            ("card", "2900001234567"), ("card", ";2900001234567=1?")):
            assert resolve(session, Identifier(type=kind, value=value)).id == "c-1", (kind, value)
        with pytest.raises(CustomerNotFound, match="'nobody'"):
            resolve(session, Identifier(type="id", value="nobody"))
        with pytest.raises(IdentifierTaken, match="'c-1'"):
            check_card_free(session, "2900001234567", None)

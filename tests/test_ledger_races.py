"""Concurrent write-offs on one account: some win, the rest get Overdraw, never negative."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from tropa.errors import Overdraw
from tropa.loyalty import ledger
from tropa.loyalty.models import OperationResult, Source
from tropa.loyalty.programme import Programme
from tropa.store.db import session_scope
from tropa.store.models import Customer

PROGRAMME = Programme()
SRC = Source(kind="api", api_key="test")


def test_racing_write_offs_never_overdraw(any_engine: sa.Engine) -> None:
    with session_scope(any_engine) as session:
        session.add(Customer(id="c-race"))
    with session_scope(any_engine) as session:
        ledger.accrue(session, PROGRAMME, customer_id="c-race", amount=1000,
                      idempotency_key="seed", source=SRC)

    def spend(n: int) -> OperationResult | Overdraw:
        try:
            with session_scope(any_engine) as session:
                return ledger.write_off(session, PROGRAMME, customer_id="c-race", amount=300,
                                        idempotency_key=f"spend-{n}", source=SRC)
        except Overdraw as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(spend, range(16)))

    won = [o for o in outcomes if isinstance(o, OperationResult)]
    lost = [o for o in outcomes if isinstance(o, Overdraw)]
    assert len(won) == 3 and len(lost) == 13
    assert all(o.available == 100 for o in lost)
    with session_scope(any_engine) as session:
        assert ledger.balance(session, PROGRAMME, "c-race").bonus.balance == 100


def test_a_repeated_key_returns_the_first_result_under_concurrency(any_engine: sa.Engine) -> None:
    with session_scope(any_engine) as session:
        session.add(Customer(id="c-twice"))

    def accrue(_: int) -> int:
        with session_scope(any_engine) as session:
            return ledger.accrue(session, PROGRAMME, customer_id="c-twice", amount=50,
                                 idempotency_key="same", source=SRC).operation_id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(accrue, range(6)))
    assert len(ids) == 1
    with session_scope(any_engine) as session:
        assert ledger.balance(session, PROGRAMME, "c-twice").bonus.balance == 50

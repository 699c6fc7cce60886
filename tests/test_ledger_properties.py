"""Property tests of the ledger against a plain model, on SQLite and PostgreSQL.

For any sequence of accruals, write-offs, cancels, order refunds, clock moves and burns:
the balance is the sum of live buckets, it is never negative, write-offs take the buckets
nearest to expiry first, and a cancelled write-off puts points back where they came from.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tropa.errors import LoyaltyRefused, Overdraw
from tropa.loyalty import ledger
from tropa.loyalty.expiry import burn_expired
from tropa.loyalty.models import Source
from tropa.loyalty.programme import Programme
from tropa.store.db import session_scope
from tropa.store.models import Customer

START = datetime(2026, 1, 1, 9, tzinfo=UTC)
SRC = Source(kind="api", api_key="test")
PROGRAMME = Programme()


@dataclass
class Bucket:
    op: int
    remaining: int
    active_from: datetime
    expires_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.active_from <= now and (self.expires_at is None or self.expires_at > now)


class Model:
    """The ledger as plain Python: buckets and the draws of each write-off."""

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}  # by accrual operation id
        self.draws: dict[int, list[tuple[int, int]]] = {}  # write-off id -> (accrual, amount)
        self.cancelled: set[int] = set()

    def live_sum(self, now: datetime) -> int:
        return sum(b.remaining for b in self.buckets.values() if b.live(now))

    def pending(self, now: datetime) -> int:
        return sum(b.remaining for b in self.buckets.values() if b.active_from > now)

    def order(self, now: datetime) -> list[Bucket]:
        far = datetime.max.replace(tzinfo=UTC)
        live = [b for b in self.buckets.values() if b.live(now) and b.remaining > 0]
        return sorted(live, key=lambda b: (b.expires_at or far, b.op))


accrual = st.tuples(st.just("accrue"), st.integers(1, 1000), st.integers(0, 3),
                    st.one_of(st.none(), st.integers(1, 20)), st.sampled_from([None, "o1", "o2"]))
write_off = st.tuples(st.just("write_off"), st.integers(1, 1500),
                      st.sampled_from([None, "o1", "o2"]))
cancel = st.tuples(st.just("cancel"), st.integers(0, 30))
refund = st.tuples(st.just("refund"), st.sampled_from(["o1", "o2"]))
tick = st.tuples(st.just("tick"), st.integers(0, 240))  # hours
burn = st.tuples(st.just("burn"))
steps = st.lists(st.one_of(accrual, accrual, write_off, write_off, cancel, refund, tick, burn),
                 min_size=1, max_size=25)


def _play(engine: sa.Engine, ops: list[tuple[Any, ...]]) -> None:
    customer = f"c-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        session.add(Customer(id=customer))
    model = Model()
    now = START
    done: list[int] = []
    for n, step in enumerate(ops):
        key = f"{customer}/{n}"
        with session_scope(engine) as s:
            if step[0] == "accrue":
                _, amount, delay_days, life_days, order = step
                active_from = now + timedelta(days=delay_days)
                expires = active_from + timedelta(days=life_days) if life_days else None
                r = ledger.accrue(s, PROGRAMME, customer_id=customer, amount=amount,
                                  idempotency_key=key, source=SRC, active_from=active_from,
                                  expires_at=expires, order_id=order and f"{customer}/{order}",
                                  now=now)
                model.buckets[r.operation_id] = Bucket(r.operation_id, amount, active_from, expires)
                done.append(r.operation_id)
                again = ledger.accrue(s, PROGRAMME, customer_id=customer, amount=amount + 1,
                                      idempotency_key=key, source=SRC, now=now)
                assert again.repeated and again.operation_id == r.operation_id
            elif step[0] == "write_off":
                _, amount, order = step
                expected = model.order(now)
                available = model.live_sum(now)
                try:
                    r = ledger.write_off(s, PROGRAMME, customer_id=customer, amount=amount,
                                         idempotency_key=key, source=SRC,
                                         order_id=order and f"{customer}/{order}", now=now)
                except Overdraw as exc:
                    assert amount > available
                    assert exc.available == available
                    continue
                assert amount <= available
                left, want = amount, []
                for b in expected:  # nearest expiry first
                    take = min(left, b.remaining)
                    if take:
                        want.append((b.op, take))
                        b.remaining -= take
                        left -= take
                assert [(d.accrual_id, d.amount) for d in r.draws] == want
                model.draws[r.operation_id] = want
                done.append(r.operation_id)
            elif step[0] == "cancel" and done:
                target = done[step[1] % len(done)]
                try:
                    ledger.cancel(s, PROGRAMME, operation_id=target, idempotency_key=key,
                                  source=SRC, now=now)
                except LoyaltyRefused:
                    assert target in model.cancelled
                    continue
                _model_cancel(model, target)
            elif step[0] == "refund":
                for r in ledger.refund_order(s, PROGRAMME, order_id=f"{customer}/{step[1]}",
                                                source=SRC, now=now):
                    assert r.cancels is not None
                    _model_cancel(model, r.cancels)
            elif step[0] == "tick":
                now += timedelta(hours=step[1])
            elif step[0] == "burn":
                burn_expired(s, PROGRAMME, now=now)
                for b in model.buckets.values():
                    if b.expires_at is not None and b.expires_at <= now:
                        b.remaining = 0
        with session_scope(engine) as s:
            seen = ledger.balance(s, PROGRAMME, customer, now=now)
        assert seen.bonus.balance == model.live_sum(now) >= 0, step
        assert seen.bonus.pending == model.pending(now), step
        assert all(b.remaining >= 0 for b in model.buckets.values())


def _model_cancel(model: Model, target: int) -> None:
    assert target not in model.cancelled
    model.cancelled.add(target)
    if target in model.draws:  # a write-off: each draw returns to its own bucket
        for op, amount in model.draws[target]:
            model.buckets[op].remaining += amount
    else:
        model.buckets[target].remaining = 0


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_balance_is_the_sum_of_live_buckets_and_never_negative(
        db: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    from tests.conftest import _fresh_engine

    url = f"sqlite:///{tmp_path / 'l.db'}" if db == "sqlite" else request.getfixturevalue(
        "postgres_url")
    engine = _fresh_engine(url)

    @settings(max_examples=100 if db == "sqlite" else 25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(ops=steps)
    def check(ops: list[tuple[Any, ...]]) -> None:
        _play(engine, ops)

    try:
        check()
    finally:
        engine.dispose()

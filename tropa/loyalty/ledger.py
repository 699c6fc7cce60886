"""The ledger: accrue, write off, cancel, burn; balances computed live from buckets.

Each accrual is a bucket with its own activation time and burn time. A write-off takes
from active buckets nearest to expiry first and records each draw, so cancelling it (or
refunding its order) puts every amount back into the bucket it came from, with that
bucket's original expiry. A balance is the sum of what remains in buckets that are active
and not expired *now*, so it is right before the burn sweep has run.

Every change of an account first bumps the account row (`UPDATE ... SET seq = seq + 1`):
a row lock on PostgreSQL, the write lock on SQLite. Operations on one account therefore
run one after the other and a balance never goes negative.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tropa.clock import ensure_aware, utcnow
from tropa.errors import LoyaltyError, LoyaltyNotFound, LoyaltyRefused, Overdraw
from tropa.loyalty.models import (
    Account,
    AccountBalance,
    Balance,
    Draw,
    LevelChange,
    NextExpiry,
    OperationResult,
    Source,
)
from tropa.loyalty.programme import Programme
from tropa.store.loyalty_models import LoyaltyAccount, LoyaltyBucket, LoyaltyEntry, LoyaltyOperation
from tropa.store.models import Customer

MAX_AMOUNT = 10**12


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LoyaltyError(f"amount must be a whole number of points, got {amount!r}")
    if not 0 < amount <= MAX_AMOUNT:
        raise LoyaltyError(f"amount must be between 1 and {MAX_AMOUNT}, got {amount}")


def _account(session: Session, customer_id: str, programme: str, kind: Account) -> LoyaltyAccount:
    """The account, created on first use (a concurrent creation is tolerated)."""
    query = select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id,
                                         LoyaltyAccount.programme == programme,
                                         LoyaltyAccount.kind == kind)
    found = session.exec(query).first()
    if found is not None:
        return found
    if session.get(Customer, customer_id) is None:
        raise LoyaltyNotFound(f"customer {customer_id!r} does not exist; create it with "
                              "PUT /v1/customers/{id}")
    try:
        with session.begin_nested():
            account = LoyaltyAccount(customer_id=customer_id, programme=programme, kind=kind)
            session.add(account)
        return account
    except IntegrityError:
        return session.exec(query).one()


def lock_account(session: Session, account: LoyaltyAccount) -> None:
    """Bump the account row: the row lock (write lock on SQLite) every change holds."""
    session.execute(sa.update(LoyaltyAccount)
                    .where(col(LoyaltyAccount.id) == account.id)
                    .values(seq=LoyaltyAccount.seq + 1))


def _existing(session: Session, key: str) -> OperationResult | None:
    done = session.exec(select(LoyaltyOperation)
                        .where(LoyaltyOperation.idempotency_key == key)).first()
    if done is None:
        return None
    return OperationResult.model_validate({**done.result, "repeated": True})


def _live(now: datetime) -> Any:
    return sa.and_(col(LoyaltyBucket.active_from) <= now,
                   sa.or_(col(LoyaltyBucket.expires_at).is_(None),
                          col(LoyaltyBucket.expires_at) > now))


def _totals(session: Session, account_id: int, now: datetime) -> tuple[int, int]:
    b = LoyaltyBucket
    active = sa.case((_live(now), b.remaining), else_=0)
    pending = sa.case((col(b.active_from) > now, b.remaining), else_=0)
    row = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(active), 0),
                  sa.func.coalesce(sa.func.sum(pending), 0))
        .where(col(b.account_id) == account_id, col(b.remaining) > 0)).one()
    return int(row[0]), int(row[1])


def _next_expiry(session: Session, account_id: int, at: datetime | None,
                 now: datetime) -> NextExpiry | None:
    if at is None:
        return None
    b = LoyaltyBucket
    burning = session.execute(
        sa.select(sa.func.sum(col(b.remaining)))
        .where(col(b.account_id) == account_id, col(b.expires_at) == at,
               col(b.remaining) > 0, col(b.active_from) <= now)).scalar_one()
    return NextExpiry(at=ensure_aware(at), amount=int(burning or 0))


def balance(session: Session, programme: Programme, customer_id: str,
            now: datetime | None = None) -> Balance:
    """The customer's balances and level, computed live as of `now` (default: the clock).

    One aggregate over the customer's buckets gives each account's balance, pending points
    and nearest burn time; one more query per account tells how much burns then."""
    now = now or utcnow()
    if session.get(Customer, customer_id) is None:
        raise LoyaltyNotFound(f"customer {customer_id!r} does not exist")
    a, b = LoyaltyAccount, LoyaltyBucket
    live = _live(now)
    rows = session.execute(
        sa.select(col(a.kind), col(a.id),
                  sa.func.coalesce(sa.func.sum(sa.case((live, b.remaining), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(
                      sa.case((col(b.active_from) > now, b.remaining), else_=0)), 0),
                  sa.func.min(sa.case((sa.and_(live, col(b.expires_at).is_not(None)),
                                       b.expires_at))))
        .select_from(a)
        .join(b, sa.and_(col(b.account_id) == col(a.id), col(b.remaining) > 0), isouter=True)
        .where(col(a.customer_id) == customer_id, col(a.programme) == programme.programme)
        .group_by(col(a.kind), col(a.id))).all()
    accounts = {kind: AccountBalance(balance=int(total), pending=int(pending),
                                     next_expiry=_next_expiry(session, account_id, at, now))
                for kind, account_id, total, pending, at in rows}
    empty = AccountBalance(balance=0, pending=0)
    bonus, qual = accounts.get("bonus", empty), accounts.get("qualification", empty)
    return Balance(customer_id=customer_id, programme=programme.programme, as_of=now,
                   bonus=bonus, qualification=qual, level=programme.level_for(qual.balance))


def relevel(session: Session, programme: Programme, account: LoyaltyAccount,
             now: datetime) -> LevelChange | None:
    """Store the level the live qualification balance reaches; return the change, if any."""
    if account.kind != "qualification":
        return None
    assert account.id is not None
    points, _ = _totals(session, account.id, now)
    level = programme.level_for(points)
    # A new account starts at the level of 0 points: reaching it is no change.
    current = account.level if account.level is not None else programme.level_for(0)
    change = LevelChange(from_=current, to=level) if level != current else None
    if level == account.level:
        return None
    session.execute(sa.update(LoyaltyAccount).where(col(LoyaltyAccount.id) == account.id)
                    .values(level=level))
    account.level = level
    return change


def _finish(session: Session, programme: Programme, op: LoyaltyOperation,
            account: LoyaltyAccount, now: datetime, **fields: Any) -> OperationResult:
    change = relevel(session, programme, account, now)
    assert op.id is not None and account.id is not None
    total, pending = _totals(session, account.id, now)
    result = OperationResult(
        operation_id=op.id, kind=op.kind, customer_id=op.customer_id,
        account=account.kind,
        amount=op.amount, reason=op.reason, balance=total, pending=pending,
        level=account.level if account.kind == "qualification" else None,
        level_changed=change, cancels=op.cancels, **fields)
    op.result = result.model_dump(mode="json", by_alias=True)
    session.add(op)
    session.flush()
    return result


def _welcome_key(phone: str) -> str:
    return hashlib.sha256(phone.encode()).hexdigest()[:32]


def _welcome_check(session: Session, programme: Programme, customer_id: str,
                   now: datetime) -> str | None:
    """The phone digest for a welcome accrual; LoyaltyRefused when the limit is reached."""
    customer = session.get(Customer, customer_id)
    if customer is None or not customer.phone:
        return None
    key = _welcome_key(customer.phone)
    rule = programme.welcome
    taken = session.execute(
        sa.select(sa.func.count()).select_from(LoyaltyOperation)
        .where(col(LoyaltyOperation.welcome_key) == key,
               col(LoyaltyOperation.cancelled_by).is_(None),
               col(LoyaltyOperation.created_at) > now - rule.window_delta())).scalar_one()
    if taken >= rule.max_per_phone:
        raise LoyaltyRefused(
            f"welcome limit reached: this phone number already got {taken} welcome "
            f"accrual(s) within {rule.window} (at most {rule.max_per_phone})",
            reason="welcome_limit")
    return key


def _prepare(session: Session, programme: Programme, customer_id: str, kind: Account,
             key: str) -> tuple[LoyaltyAccount | None, OperationResult | None]:
    """The locked account, or the first result of a repeated idempotency key."""
    if not key or len(key) > 400:
        raise LoyaltyError("idempotency_key must be 1 to 400 characters")
    repeat = _existing(session, key)
    if repeat is not None:
        return None, repeat
    account = _account(session, customer_id, programme.programme, kind)
    lock_account(session, account)
    # Checked again under the lock: a concurrent request with the same key may have won.
    repeat = _existing(session, key)
    return (None, repeat) if repeat is not None else (account, None)


def accrue(session: Session, programme: Programme, *, customer_id: str, amount: int,
           idempotency_key: str, source: Source, account: Account = "bonus",
           reason: str = "", active_from: datetime | None = None,
           expires_at: datetime | None = None, order_id: str | None = None,
           found_by: dict[str, Any] | None = None,
           now: datetime | None = None) -> OperationResult:
    """Put `amount` on an account as a new bucket that activates and burns when told."""
    now = now or utcnow()
    _check_amount(amount)
    active_from = active_from or now
    if expires_at is not None and expires_at <= active_from:
        raise LoyaltyError("expires_at must be after the accrual activates "
                           f"({active_from.isoformat()}); give a later burn time")
    acct, repeat = _prepare(session, programme, customer_id, account, idempotency_key)
    if repeat is not None:
        return repeat
    assert acct is not None and acct.id is not None
    welcome = (_welcome_check(session, programme, customer_id, now)
               if reason and reason == programme.welcome.reason else None)
    op = LoyaltyOperation(idempotency_key=idempotency_key, account_id=acct.id,
                          customer_id=customer_id, kind="accrual", amount=amount,
                          reason=reason, source=source.model_dump(exclude_none=True),
                          found_by=found_by or {}, order_id=order_id, welcome_key=welcome,
                          created_at=now)
    session.add(op)
    session.flush()
    assert op.id is not None and acct.id is not None
    bucket = LoyaltyBucket(account_id=acct.id, operation_id=op.id, amount=amount,
                           remaining=amount, active_from=active_from, expires_at=expires_at,
                           created_at=now)
    session.add(bucket)
    session.flush()
    assert bucket.id is not None
    session.add(LoyaltyEntry(account_id=acct.id, operation_id=op.id, bucket_id=bucket.id,
                             kind="accrual", amount=amount, at=now))
    return _finish(session, programme, op, acct, now, active_from=active_from,
                   expires_at=expires_at)


def write_off(session: Session, programme: Programme, *, customer_id: str, amount: int,
              idempotency_key: str, source: Source, reason: str = "",
              order_id: str | None = None, found_by: dict[str, Any] | None = None,
              now: datetime | None = None) -> OperationResult:
    """Take `amount` from active bonus buckets nearest to expiry first; Overdraw if short."""
    now = now or utcnow()
    _check_amount(amount)
    acct, repeat = _prepare(session, programme, customer_id, "bonus", idempotency_key)
    if repeat is not None:
        return repeat
    assert acct is not None and acct.id is not None
    available, _ = _totals(session, acct.id, now)
    if available < amount:
        raise Overdraw(amount, available)
    op = LoyaltyOperation(idempotency_key=idempotency_key, account_id=acct.id,
                          customer_id=customer_id, kind="write_off", amount=amount,
                          reason=reason, source=source.model_dump(exclude_none=True),
                          found_by=found_by or {}, order_id=order_id, created_at=now)
    session.add(op)
    session.flush()
    assert op.id is not None
    draws: list[Draw] = []
    left = amount
    b = LoyaltyBucket
    while left > 0:
        # A page at a time: a customer with thousands of buckets loads only what is spent.
        # Drained buckets are flushed with 0 left, so the next page starts after them.
        page = session.exec(
            select(b).where(b.account_id == acct.id, col(b.remaining) > 0, _live(now))
            .order_by(col(b.expires_at).asc().nulls_last(), col(b.id))
            .limit(20)).all()
        if not page:  # cannot happen under the lock; never loop forever
            raise LoyaltyError("the balance changed during the write-off; try again")
        for bucket in page:
            if left == 0:
                break
            take = min(left, bucket.remaining)
            left -= take
            bucket.remaining -= take
            session.add(bucket)
            assert bucket.id is not None
            session.add(LoyaltyEntry(account_id=acct.id, operation_id=op.id,
                                     bucket_id=bucket.id, kind="write_off", amount=-take,
                                     at=now))
            draws.append(Draw(bucket_id=bucket.id, accrual_id=bucket.operation_id, amount=take,
                              expires_at=bucket.expires_at))
        session.flush()
    return _finish(session, programme, op, acct, now, draws=draws)


def cancel(session: Session, programme: Programme, *, operation_id: int, idempotency_key: str,
           source: Source, reason: str = "", now: datetime | None = None) -> OperationResult:
    """Undo an operation: a write-off's draws go back to their buckets (with their original
    expiry); an accrual loses what is left of its bucket (what was spent stays spent)."""
    now = now or utcnow()
    target = session.get(LoyaltyOperation, operation_id)
    if target is None:
        raise LoyaltyNotFound(f"operation {operation_id} does not exist")
    if target.kind not in ("accrual", "write_off"):
        raise LoyaltyRefused(f"operation {operation_id} is a {target.kind}; only accruals and "
                             "write-offs can be cancelled", reason="not_cancellable")
    acct_row = session.get(LoyaltyAccount, target.account_id)
    assert acct_row is not None
    kind: Account = "qualification" if acct_row.kind == "qualification" else "bonus"
    acct, repeat = _prepare(session, programme, target.customer_id, kind, idempotency_key)
    if repeat is not None:
        return repeat
    assert acct is not None and acct.id is not None
    session.refresh(target)
    if target.cancelled_by is not None:
        raise LoyaltyRefused(f"operation {operation_id} is already cancelled by operation "
                             f"{target.cancelled_by}", reason="already_cancelled")
    op = LoyaltyOperation(idempotency_key=idempotency_key, account_id=acct.id,
                          customer_id=target.customer_id, kind="cancel", amount=0,
                          reason=reason, source=source.model_dump(exclude_none=True),
                          found_by={}, order_id=target.order_id, cancels=target.id,
                          created_at=now)
    session.add(op)
    session.flush()
    assert op.id is not None
    draws = _undo(session, target, op.id, acct.id, now)
    op.amount = sum(d.amount for d in draws)
    target.cancelled_by = op.id
    session.add(target)
    return _finish(session, programme, op, acct, now, draws=draws)


def _undo(session: Session, target: LoyaltyOperation, op_id: int, account_id: int,
          now: datetime) -> list[Draw]:
    entries = session.exec(select(LoyaltyEntry).where(
        LoyaltyEntry.operation_id == target.id,
        col(LoyaltyEntry.kind).in_(("write_off", "accrual"))).order_by(col(LoyaltyEntry.id))).all()
    draws: list[Draw] = []
    for entry in entries:
        bucket = session.get(LoyaltyBucket, entry.bucket_id)
        assert bucket is not None and bucket.id is not None
        if entry.kind == "write_off":
            back, kind = -entry.amount, "restore"
            bucket.remaining += back
        else:
            back, kind = bucket.remaining, "reverse"
            bucket.remaining = 0
        if back == 0:
            continue
        session.add(bucket)
        session.add(LoyaltyEntry(account_id=account_id, operation_id=op_id, bucket_id=bucket.id,
                                 kind=kind, amount=back if kind == "restore" else -back, at=now))
        draws.append(Draw(bucket_id=bucket.id, accrual_id=bucket.operation_id, amount=back,
                          expires_at=bucket.expires_at))
    return draws


def refund_order(session: Session, programme: Programme, *, order_id: str, source: Source,
                 reason: str = "order refunded",
                 now: datetime | None = None) -> list[OperationResult]:
    """Cancel every live operation of an order: its write-offs return to their buckets, its
    accruals are reversed. What is cancelled already is skipped, so a repeated refund
    changes nothing."""
    ops = session.exec(select(LoyaltyOperation).where(
        LoyaltyOperation.order_id == order_id,
        col(LoyaltyOperation.kind).in_(("accrual", "write_off"))).order_by(
            col(LoyaltyOperation.id))).all()
    results = []
    for op in ops:
        assert op.id is not None
        if op.cancelled_by is not None:
            continue
        results.append(cancel(session, programme, operation_id=op.id,
                              idempotency_key=f"refund/{order_id}/{op.id}",
                              source=source, reason=reason, now=now))
    return results

"""A customer's statement: the entries of their accounts, newest first, paged by id."""

from __future__ import annotations

from sqlmodel import Session, col, select

from tropa.loyalty.models import Entry
from tropa.loyalty.programme import Programme
from tropa.store.loyalty_models import LoyaltyAccount, LoyaltyBucket, LoyaltyEntry, LoyaltyOperation


def entries(session: Session, programme: Programme, customer_id: str, *,
            account: str | None = None, limit: int = 100,
            before: int | None = None) -> list[Entry]:
    """Up to `limit` entries older than entry `before`, each with its bucket's burn time."""
    e, a, b, o = LoyaltyEntry, LoyaltyAccount, LoyaltyBucket, LoyaltyOperation
    query = (select(e, a.kind, b.expires_at, o.reason)
             .join(a, col(a.id) == col(e.account_id))
             .join(b, col(b.id) == col(e.bucket_id))
             .join(o, col(o.id) == col(e.operation_id))
             .where(a.customer_id == customer_id, a.programme == programme.programme))
    if account is not None:
        query = query.where(a.kind == account)
    if before is not None:
        query = query.where(col(e.id) < before)
    rows = session.exec(query.order_by(col(e.id).desc()).limit(limit)).all()
    out = []
    for entry, kind, expires_at, reason in rows:
        assert entry.id is not None
        out.append(Entry(id=entry.id, operation_id=entry.operation_id, kind=entry.kind,
                         account=kind, amount=entry.amount, bucket_id=entry.bucket_id,
                         expires_at=expires_at, reason=reason, at=entry.at))
    return out

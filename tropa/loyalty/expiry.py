"""Burning what expired and finding what will burn soon, a page at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from tropa.loyalty.ledger import lock_account, relevel
from tropa.loyalty.models import LevelChange
from tropa.loyalty.programme import Programme
from tropa.store.loyalty_models import LoyaltyAccount, LoyaltyBucket, LoyaltyEntry, LoyaltyOperation


class Burned(BaseModel):
    """One burn: an expiry entry of one bucket."""

    customer_id: str
    bucket_id: int
    amount: int
    level_changed: LevelChange | None = None


class BurnPage(BaseModel):
    """A page of burns; `more` tells the sweep to ask again."""

    burned: list[Burned] = Field(default_factory=list)
    more: bool = False


def burn_expired(session: Session, programme: Programme, *, now: datetime,
                 limit: int = 200) -> BurnPage:
    """Burn up to `limit` expired buckets that still hold points: an `expiry` operation and
    entry for each. A bucket burned already holds nothing, so a repeated sweep burns nothing."""
    b = LoyaltyBucket
    ids = session.exec(select(b.id).where(col(b.remaining) > 0, col(b.expires_at).is_not(None),
                                         col(b.expires_at) <= now)
                       .order_by(col(b.expires_at), col(b.id)).limit(limit + 1)).all()
    page = BurnPage(more=len(ids) > limit)
    for bucket_id in ids[:limit]:
        bucket = session.get(LoyaltyBucket, bucket_id)
        assert bucket is not None and bucket.id is not None
        account = session.get(LoyaltyAccount, bucket.account_id)
        assert account is not None and account.id is not None
        lock_account(session, account)
        session.refresh(bucket)
        if bucket.remaining <= 0:
            continue
        amount = bucket.remaining
        op = LoyaltyOperation(idempotency_key=f"expiry/{bucket.id}/{now.isoformat()}",
                              account_id=account.id, customer_id=account.customer_id,
                              kind="expiry", amount=amount, reason="expired",
                              source={"kind": "system"}, found_by={}, created_at=now)
        session.add(op)
        session.flush()
        assert op.id is not None
        bucket.remaining = 0
        session.add(bucket)
        session.add(LoyaltyEntry(account_id=account.id, operation_id=op.id,
                                 bucket_id=bucket.id, kind="expiry", amount=-amount, at=now))
        session.flush()
        change = relevel(session, programme, account, now)
        op.result = {"operation_id": op.id, "bucket_id": bucket.id, "amount": amount}
        session.add(op)
        page.burned.append(Burned(customer_id=account.customer_id, bucket_id=bucket.id,
                                  amount=amount, level_changed=change))
        session.commit()
    return page


class Expiring(BaseModel):
    """Points of one customer that burn at one moment, not announced before."""

    customer_id: str
    account: str
    amount: int
    expires_at: datetime

    def event_id(self) -> str:
        """A stable event id: the router stores it once, so a notice goes out once."""
        return f"loyalty.expiring/{self.customer_id}/{self.account}/{self.expires_at.isoformat()}"

    def event_data(self) -> dict[str, Any]:
        """`event.data` of the `loyalty.expiring` event."""
        return {"account": self.account, "amount": self.amount,
                "expires_at": self.expires_at.isoformat()}


def find_expiring(session: Session, *, now: datetime, within: timedelta,
                  limit: int = 500) -> tuple[list[Expiring], list[int]]:
    """Active buckets burning within `within` and not announced yet, grouped by customer,
    account and burn time; with the bucket ids to pass to `mark_announced` once routed."""
    b = LoyaltyBucket
    rows = session.execute(
        sa.select(col(b.id), col(LoyaltyAccount.customer_id), col(LoyaltyAccount.kind),
                  col(b.remaining), col(b.expires_at))
        .join(LoyaltyAccount, col(LoyaltyAccount.id) == col(b.account_id))
        .where(col(b.remaining) > 0, col(b.notified_at).is_(None), col(b.active_from) <= now,
               col(b.expires_at) > now, col(b.expires_at) <= now + within)
        .order_by(col(b.expires_at), col(b.id)).limit(limit)).all()
    groups: dict[tuple[str, str, datetime], int] = {}
    for _id, customer_id, kind, remaining, expires_at in rows:
        groups[(customer_id, kind, expires_at)] = groups.get(
            (customer_id, kind, expires_at), 0) + remaining
    return ([Expiring(customer_id=c, account=k, amount=a, expires_at=e)
             for (c, k, e), a in groups.items()], [int(r[0]) for r in rows])


def mark_announced(session: Session, bucket_ids: list[int], now: datetime) -> None:
    """Remember that these buckets' burn was announced."""
    if bucket_ids:
        session.execute(sa.update(LoyaltyBucket)
                        .where(col(LoyaltyBucket.id).in_(bucket_ids))
                        .values(notified_at=now))

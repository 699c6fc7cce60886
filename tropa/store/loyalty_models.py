"""Loyalty tables: accounts, operations, buckets (one per accrual), entries, coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(sa.JSON, nullable=False), **kwargs)


def _aware() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime)


class LoyaltyAccount(SQLModel, table=True):
    """One account of a customer in a programme: `bonus` or `qualification`.

    Every change of an account first bumps `seq` with an UPDATE: that row lock (PostgreSQL)
    or write lock (SQLite) serialises operations on the account, so two write-offs cannot
    both see the same balance.
    """

    __tablename__ = "loyalty_accounts"
    __table_args__ = (sa.UniqueConstraint("customer_id", "programme", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=128)
    programme: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # bonus | qualification
    level: str | None = Field(default=None, max_length=64)
    seq: int = 0
    created_at: datetime = _aware()


class LoyaltyOperation(SQLModel, table=True):
    """One accrual, write-off, cancel or burn; unique by idempotency key."""

    __tablename__ = "loyalty_operations"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=400)
    account_id: int = Field(foreign_key="loyalty_accounts.id", index=True)
    customer_id: str = Field(index=True, max_length=128)
    kind: str = Field(max_length=16)  # accrual | write_off | cancel | expiry
    amount: int = Field(sa_type=sa.BigInteger)
    reason: str = Field(default="", max_length=200)
    source: dict[str, Any] = _json(default_factory=dict)
    found_by: dict[str, Any] = _json(default_factory=dict)
    order_id: str | None = Field(default=None, index=True, max_length=200)
    cancels: int | None = Field(default=None, index=True)
    cancelled_by: int | None = None
    # A digest of the phone for the welcome limit: never the phone itself.
    welcome_key: str | None = Field(default=None, index=True, max_length=64)
    result: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _aware()


class LoyaltyBucket(SQLModel, table=True):
    """What one accrual put on an account and what is left of it, with its life."""

    __tablename__ = "loyalty_buckets"
    __table_args__ = (sa.Index("ix_loyalty_buckets_expiry", "expires_at", "remaining"),
                      # write-offs walk an account's buckets nearest to expiry first
                      sa.Index("ix_loyalty_buckets_spend", "account_id", "expires_at", "id"))

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="loyalty_accounts.id", index=True)
    operation_id: int = Field(foreign_key="loyalty_operations.id", index=True)
    amount: int = Field(sa_type=sa.BigInteger)
    remaining: int = Field(sa_type=sa.BigInteger)
    active_from: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = _aware()


class LoyaltyEntry(SQLModel, table=True):
    """A line of an account's statement: a signed change of one bucket."""

    __tablename__ = "loyalty_entries"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="loyalty_accounts.id", index=True)
    operation_id: int = Field(foreign_key="loyalty_operations.id", index=True)
    bucket_id: int = Field(foreign_key="loyalty_buckets.id", index=True)
    kind: str = Field(max_length=16)  # accrual | write_off | restore | reverse | expiry
    amount: int = Field(sa_type=sa.BigInteger)
    at: datetime = _aware()


class CouponSeries(SQLModel, table=True):
    """A series of coupons or gift cards: code pattern, life, limits, value."""

    __tablename__ = "coupon_series"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(default="coupon", max_length=16)  # coupon | gift_card
    prefix: str = Field(default="", max_length=16)
    length: int = 8
    alphabet: str = Field(default="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", max_length=64)
    activates_in_seconds: int = 0
    lifetime_seconds: int | None = None
    uses_per_code: int = 1
    total_limit: int | None = None
    issued: int = 0
    value: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = _aware()


class Coupon(SQLModel, table=True):
    """An issued code; `uses` and `remainder` change only by guarded atomic updates."""

    __tablename__ = "coupons"

    code: str = Field(primary_key=True, max_length=64)
    series_id: str = Field(foreign_key="coupon_series.id", index=True, max_length=64)
    customer_id: str | None = Field(default=None, index=True, max_length=128)
    idempotency_key: str = Field(unique=True, max_length=400)
    status: str = Field(default="issued", max_length=16)  # issued | revoked
    uses: int = 0
    remainder: int | None = Field(default=None, sa_type=sa.BigInteger)
    active_from: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    issued_at: datetime = _aware()


class CouponRedemption(SQLModel, table=True):
    """One use of a code (a gift card: the amount taken)."""

    __tablename__ = "coupon_redemptions"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(foreign_key="coupons.code", index=True, max_length=64)
    idempotency_key: str = Field(unique=True, max_length=400)
    amount: int = Field(default=0, sa_type=sa.BigInteger)
    order_id: str | None = Field(default=None, max_length=200)
    at: datetime = _aware()


LOYALTY_TABLES = ("coupon_redemptions", "coupons", "coupon_series", "loyalty_entries",
                  "loyalty_buckets", "loyalty_operations", "loyalty_accounts")

"""Coupon series and codes: issue unique codes, redeem them (atomically), expire, revoke.

A gift card is a series with a `value`: each code starts with that remainder and every
redemption takes an amount from it. Uses and remainders change only by guarded UPDATEs
(`... WHERE uses < uses_per_code`), so of two concurrent redemptions of a one-use code,
exactly one wins on both databases.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.errors import LoyaltyError, LoyaltyNotFound, LoyaltyRefused
from tropa.store.loyalty_models import Coupon, CouponRedemption, CouponSeries
from tropa.store.models import Customer

DEFAULT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class SeriesSpec(BaseModel):
    """A coupon series as declared through the API."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["spring-10"],
                    description="Series name: lower case letters, digits, `-` and `_`")
    kind: Literal["coupon", "gift_card"] = "coupon"
    prefix: str = Field(default="", max_length=16, pattern=r"^[A-Z0-9-]*$")
    length: int = Field(default=8, ge=4, le=32, description="Random characters after the prefix")
    alphabet: str = Field(default=DEFAULT_ALPHABET, min_length=2, max_length=64,
                          pattern=r"^[A-Z0-9]+$")
    activates_in_seconds: int = Field(default=0, ge=0, le=10 * 365 * 86400)
    lifetime_seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)
    uses_per_code: int = Field(default=1, ge=1, le=1_000_000)
    total_limit: int | None = Field(default=None, ge=1, le=100_000_000)
    value: int | None = Field(default=None, ge=1, le=10**12,
                              description="Gift cards: the starting remainder, minor units")


class CouponView(BaseModel):
    """An issued code and its state as of now."""

    code: str
    series: str
    customer_id: str | None
    state: Literal["pending", "active", "used", "expired", "revoked"]
    uses: int
    uses_left: int
    remainder: int | None
    active_from: datetime
    expires_at: datetime | None


def _view(coupon: Coupon, series: CouponSeries, now: datetime) -> CouponView:
    left = series.uses_per_code - coupon.uses
    state: Literal["pending", "active", "used", "expired", "revoked"]
    if coupon.status == "revoked":
        state = "revoked"
    elif coupon.expires_at is not None and coupon.expires_at <= now:
        state = "expired"
    elif coupon.remainder == 0 if series.kind == "gift_card" else left <= 0:
        state = "used"
    elif coupon.active_from > now:
        state = "pending"
    else:
        state = "active"
    return CouponView(code=coupon.code, series=coupon.series_id, customer_id=coupon.customer_id,
                      state=state, uses=coupon.uses, uses_left=max(left, 0),
                      remainder=coupon.remainder, active_from=coupon.active_from,
                      expires_at=coupon.expires_at)


def create_series(session: Session, spec: SeriesSpec) -> CouponSeries:
    """Declare a series; an existing name with the same settings is returned as is."""
    if spec.kind == "gift_card" and spec.value is None:
        raise LoyaltyError("a gift card series needs a `value` (its starting remainder)")
    found = session.get(CouponSeries, spec.id)
    if found is not None:
        if SeriesSpec.model_validate(found, from_attributes=True) != spec:
            raise LoyaltyRefused(f"series {spec.id!r} exists with other settings; choose "
                                 "another name", reason="series_exists")
        return found
    series = CouponSeries(**spec.model_dump())
    session.add(series)
    session.flush()
    return series


def get_series(session: Session, series_id: str) -> CouponSeries:
    """The series, or LoyaltyNotFound."""
    series = session.get(CouponSeries, series_id)
    if series is None:
        raise LoyaltyNotFound(f"coupon series {series_id!r} does not exist; create it with "
                              "POST /v1/loyalty/coupon-series")
    return series


def issue(session: Session, *, series_id: str, customer_id: str | None, idempotency_key: str,
          now: datetime | None = None) -> CouponView:
    """Issue a unique code of the series; a repeated key returns the code issued first."""
    now = now or utcnow()
    series = get_series(session, series_id)
    done = session.exec(select(Coupon).where(Coupon.idempotency_key == idempotency_key)).first()
    if done is not None:
        return _view(done, series, now)
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise LoyaltyNotFound(f"customer {customer_id!r} does not exist")
    cs = CouponSeries
    taken = session.execute(
        sa.update(cs).where(col(cs.id) == series_id,
                            sa.or_(col(cs.total_limit).is_(None),
                                   col(cs.issued) < col(cs.total_limit)))
        .values(issued=cs.issued + 1)).rowcount  # type: ignore[attr-defined]
    if not taken:
        raise LoyaltyRefused(f"series {series_id!r} reached its limit of {series.total_limit} "
                             "codes", reason="series_exhausted")
    active_from = now + timedelta(seconds=series.activates_in_seconds)
    expires = (active_from + timedelta(seconds=series.lifetime_seconds)
               if series.lifetime_seconds else None)
    for _ in range(8):
        code = series.prefix + "".join(secrets.choice(series.alphabet)
                                       for _ in range(series.length))
        coupon = Coupon(code=code, series_id=series_id, customer_id=customer_id,
                        idempotency_key=idempotency_key, remainder=series.value,
                        active_from=active_from, expires_at=expires, issued_at=now)
        try:
            with session.begin_nested():
                session.add(coupon)
            return _view(coupon, series, now)
        except IntegrityError:
            again = session.exec(select(Coupon).where(
                Coupon.idempotency_key == idempotency_key)).first()
            if again is not None:  # a concurrent request with the same key won
                return _view(again, series, now)
    raise LoyaltyError(f"series {series_id!r} could not find a free code in 8 tries; make "
                       "`length` longer or the alphabet larger")


def find(session: Session, code: str, now: datetime | None = None) -> CouponView:
    """A code's state, or LoyaltyNotFound."""
    coupon = session.get(Coupon, code.strip().upper())
    if coupon is None:
        raise LoyaltyNotFound(f"no coupon with code {code!r}")
    return _view(coupon, get_series(session, coupon.series_id), now or utcnow())


def redeem(session: Session, *, code: str, idempotency_key: str, amount: int = 0,
           order_id: str | None = None, now: datetime | None = None) -> CouponView:
    """Use a code once (a gift card: take `amount` of its remainder); LoyaltyRefused when it
    is not active, spent, or short. A repeated key returns the state after the first use."""
    now = now or utcnow()
    code = code.strip().upper()
    if session.exec(select(CouponRedemption).where(
            CouponRedemption.idempotency_key == idempotency_key)).first() is not None:
        return find(session, code, now)
    current = find(session, code, now)
    series = get_series(session, current.series)
    if current.state != "active":
        raise LoyaltyRefused(f"coupon {code} is {current.state}; it cannot be redeemed",
                             reason=f"coupon_{current.state}")
    c = Coupon
    guard = [col(c.code) == code, col(c.status) == "issued", col(c.active_from) <= now,
             sa.or_(col(c.expires_at).is_(None), col(c.expires_at) > now)]
    values: dict[str, object] = {"uses": c.uses + 1}
    if series.kind == "gift_card":
        # A gift card is spent in parts: its remainder, not a use count, is the limit.
        if amount <= 0:
            raise LoyaltyError("a gift card redemption needs a positive `amount`")
        guard.append(col(c.remainder) >= amount)
        values["remainder"] = c.remainder - amount  # type: ignore[operator]
    else:
        guard.append(col(c.uses) < series.uses_per_code)
    won = session.execute(sa.update(Coupon).where(*guard).values(**values)).rowcount  # type: ignore[attr-defined]
    if not won:
        state = find(session, code, now)
        short = series.kind == "gift_card" and (state.remainder or 0) < amount
        raise LoyaltyRefused(
            f"gift card {code} holds {state.remainder}, less than {amount}" if short else
            f"coupon {code} was used by a concurrent redemption; it is {state.state} now",
            reason="gift_card_short" if short else "coupon_used")
    session.add(CouponRedemption(code=code, idempotency_key=idempotency_key, amount=amount,
                                 order_id=order_id, at=now))
    session.flush()
    return find(session, code, now)


def revoke(session: Session, code: str, now: datetime | None = None) -> CouponView:
    """Revoke a code: it can never be redeemed again."""
    coupon = session.get(Coupon, code.strip().upper())
    if coupon is None:
        raise LoyaltyNotFound(f"no coupon with code {code!r}")
    coupon.status = "revoked"
    session.add(coupon)
    session.flush()
    return _view(coupon, get_series(session, coupon.series_id), now or utcnow())

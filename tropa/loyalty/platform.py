"""The loyalty platform journeys talk to: Tropa's embedded ledger, or an external one.

Journey steps (`accrue_bonus`, `write_off_bonus`, `issue_coupon`) and `customer.loyalty` in
templates call only the `LoyaltyPlatform` protocol. A shop that runs an external loyalty
platform installs a package declaring an entry point in the group `tropa.loyalty`:

```toml
[project.entry-points."tropa.loyalty"]
acme = "acme_tropa:AcmeLoyalty"     # called with (engine, settings), returns a LoyaltyPlatform
```
and sets `TROPA_LOYALTY_ADAPTER=acme`; no journey changes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from pydantic import BaseModel, Field

from tropa.clock import utcnow
from tropa.customers.identifiers import Identifier, resolve
from tropa.errors import LoyaltyError
from tropa.loyalty import coupons, ledger
from tropa.loyalty.coupons import CouponView
from tropa.loyalty.models import Account, OperationResult, Source
from tropa.loyalty.programme import Programme, load_programme
from tropa.settings import LoyaltySettings
from tropa.store.db import session_scope

ENTRY_POINT_GROUP = "tropa.loyalty"


def percent_of(total: int, percent: Decimal) -> int:
    """`percent` % of an order total in minor units, rounded down to a whole point.

    Rounding down never gives more than the rule says: 5 % of 1999 is 99, not 100."""
    return int((Decimal(total) * percent / 100).to_integral_value(rounding=ROUND_FLOOR))


def found_by(identifier: Identifier) -> dict[str, Any]:
    """Which identifier found the customer, without copying a phone or an email."""
    if identifier.type in ("phone", "email"):
        return {"type": identifier.type}
    return {"type": identifier.type, "value": identifier.value}


class AccrueRequest(BaseModel):
    """Put points on a customer's account."""

    customer: Identifier
    amount: int = Field(gt=0)
    account: Account = "bonus"
    reason: str = ""
    active_from: datetime | None = None
    expires_at: datetime | None = None
    order_id: str | None = None
    idempotency_key: str
    source: Source
    now: datetime | None = Field(default=None, description="The moment of the operation; "
                                 "journeys pass the run's clock")


class WriteOffRequest(BaseModel):
    """Take points from a customer's bonus account."""

    customer: Identifier
    amount: int = Field(gt=0)
    reason: str = ""
    order_id: str | None = None
    idempotency_key: str
    source: Source
    now: datetime | None = None


@runtime_checkable
class LoyaltyPlatform(Protocol):
    """What journeys need of a loyalty platform."""

    def accrue(self, request: AccrueRequest) -> OperationResult:
        """Accrue; a repeated idempotency key returns the first result."""

    def write_off(self, request: WriteOffRequest) -> OperationResult:
        """Write off; `tropa.errors.Overdraw` when the balance is short."""

    def issue_coupon(self, *, series: str, customer: Identifier, idempotency_key: str,
                     now: datetime | None = None) -> CouponView:
        """Issue a code of a series to the customer."""

    def standing(self, customer_id: str, now: datetime | None = None) -> dict[str, Any]:
        """`customer.loyalty` of templates: balance, pending, level, next_expiry."""


class EmbeddedLedger:
    """Tropa's own ledger in Tropa's database: the default platform."""

    def __init__(self, engine: sa.Engine, programme: Programme) -> None:
        self.engine = engine
        self.programme = programme

    def accrue(self, request: AccrueRequest) -> OperationResult:
        """Accrue into a new bucket."""
        with session_scope(self.engine) as session:
            customer = resolve(session, request.customer)
            return ledger.accrue(
                session, self.programme, customer_id=customer.id, amount=request.amount,
                idempotency_key=request.idempotency_key, source=request.source,
                account=request.account, reason=request.reason,
                active_from=request.active_from, expires_at=request.expires_at,
                order_id=request.order_id, found_by=found_by(request.customer),
                now=request.now)

    def write_off(self, request: WriteOffRequest) -> OperationResult:
        """Write off, nearest expiry first."""
        with session_scope(self.engine) as session:
            customer = resolve(session, request.customer)
            return ledger.write_off(
                session, self.programme, customer_id=customer.id, amount=request.amount,
                idempotency_key=request.idempotency_key, source=request.source,
                reason=request.reason, order_id=request.order_id,
                found_by=found_by(request.customer), now=request.now)

    def issue_coupon(self, *, series: str, customer: Identifier, idempotency_key: str,
                     now: datetime | None = None) -> CouponView:
        """Issue a code of the series."""
        with session_scope(self.engine) as session:
            owner = resolve(session, customer)
            return coupons.issue(session, series_id=series, customer_id=owner.id,
                                 idempotency_key=idempotency_key, now=now)

    def standing(self, customer_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The customer's balance as of `now` (default: the clock), read fresh."""
        with session_scope(self.engine) as session:
            return ledger.balance(session, self.programme, customer_id, now or utcnow()).view()


def load_platform(engine: sa.Engine, settings: LoyaltySettings) -> LoyaltyPlatform:
    """The configured platform: `embedded`, or the `tropa.loyalty` entry point so named."""
    if settings.adapter == "embedded":
        return EmbeddedLedger(engine, load_programme(settings.programme_file))
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == settings.adapter]
    if not found:
        known = ", ".join(sorted({"embedded", *(ep.name for ep in entry_points(
            group=ENTRY_POINT_GROUP))}))
        raise LoyaltyError(f"TROPA_LOYALTY_ADAPTER={settings.adapter!r} names no entry point "
                           f"of group {ENTRY_POINT_GROUP}; installed: {known}")
    platform = found[0].load()(engine, settings)
    if not isinstance(platform, LoyaltyPlatform):
        raise LoyaltyError(f"entry point {found[0].value} of group {ENTRY_POINT_GROUP} gave "
                           f"{type(platform).__name__}, which lacks the LoyaltyPlatform methods")
    return platform

"""Bodies of the loyalty API: accruals, write-offs, cancels, coupons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from tropa.api.schemas.common import Text
from tropa.customers.identifiers import Identifier
from tropa.dsl.durations import Duration
from tropa.loyalty.models import Account

Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$",
                           description="Idempotency key: a repeat returns the first result "
                           "and changes nothing", examples=["pos-7/receipt-1182"])]
Reason = Annotated[Text, Field(default="", max_length=200, examples=["birthday"])]
OrderId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Points = Annotated[int, Field(gt=0, le=10**12, description="Whole points (minor units)")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderRef(_Strict):
    """The order a percent accrual is computed from."""

    id: OrderId
    total: int = Field(ge=0, le=10**14, description="Order total in minor units")


class AccrualIn(_Strict):
    """Accrue a fixed amount, or a percent of an order total (rounded down)."""

    identifier: Identifier
    amount: Points | None = None
    percent_of_order: Decimal | None = Field(default=None, gt=0, le=100, max_digits=7,
                                             decimal_places=4)
    order: OrderRef | None = None
    account: Account = "bonus"
    reason: Reason = ""
    active_from: AwareDatetime | None = None
    activates_in: Duration | None = None
    expires_at: AwareDatetime | None = None
    expires_in: Duration | None = None
    idempotency_key: Key

    @model_validator(mode="after")
    def _one_of_each(self) -> AccrualIn:
        if (self.amount is None) == (self.percent_of_order is None):
            raise ValueError("give exactly one of `amount` or `percent_of_order`")
        if self.percent_of_order is not None and self.order is None:
            raise ValueError("`percent_of_order` needs `order: {id, total}`")
        if self.active_from and self.activates_in:
            raise ValueError("give `active_from` or `activates_in`, not both")
        if self.expires_at and self.expires_in:
            raise ValueError("give `expires_at` or `expires_in`, not both")
        return self


class WriteOffIn(_Strict):
    """Write off bonus points, nearest to expiry first."""

    identifier: Identifier
    amount: Points
    reason: Reason = ""
    order_id: OrderId | None = None
    idempotency_key: Key


class CancelIn(_Strict):
    """Cancel an accrual or a write-off."""

    reason: Reason = ""
    idempotency_key: Key


class RefundIn(_Strict):
    """An order was refunded: cancel its accruals and write-offs."""

    reason: Reason = "order refunded"


class IssueIn(_Strict):
    """Issue a code of a series, to a customer or unaddressed."""

    series: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    identifier: Identifier | None = None
    idempotency_key: Key


class RedeemIn(_Strict):
    """Use a code; gift cards take `amount` from their remainder."""

    amount: int = Field(default=0, ge=0, le=10**12)
    order_id: OrderId | None = None
    idempotency_key: Key


class LevelOut(BaseModel):
    """A level of the programme."""

    name: str
    threshold: int


class LevelsOut(BaseModel):
    """The programme's levels, lowest first."""

    programme: str
    levels: list[LevelOut]


class CardOut(BaseModel):
    """What a wallet card link shows."""

    customer_id: str
    balance: int
    pending: int
    level: str | None
    as_of: datetime

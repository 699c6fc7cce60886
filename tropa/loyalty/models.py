"""What the ledger takes and gives: sources, operation results, balances, entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Account = Literal["bonus", "qualification"]
SourceKind = Literal["journey", "api", "order", "import", "system"]


class Source(BaseModel):
    """Who asked for an operation: a journey run and step, an API key, an order, an import."""

    kind: SourceKind
    run: str | None = None
    step: str | None = None
    api_key: str | None = None
    order_id: str | None = None
    job: str | None = None


class Draw(BaseModel):
    """What a write-off took from one accrual (bucket), and that bucket's burn time."""

    bucket_id: int
    accrual_id: int
    amount: int
    expires_at: datetime | None


class LevelChange(BaseModel):
    """A change of level caused by an operation."""

    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None

    model_config = {"populate_by_name": True}


class OperationResult(BaseModel):
    """The outcome of an operation; a repeat with the same idempotency key returns it again."""

    operation_id: int
    kind: str
    customer_id: str
    account: Account
    amount: int
    reason: str = ""
    balance: int
    pending: int
    active_from: datetime | None = None
    expires_at: datetime | None = None
    cancels: int | None = None
    draws: list[Draw] = Field(default_factory=list)
    level: str | None = None
    level_changed: LevelChange | None = None
    repeated: bool = False


class NextExpiry(BaseModel):
    """The nearest burn: how much burns when."""

    amount: int
    at: datetime


class AccountBalance(BaseModel):
    """An account as of a moment: spendable balance apart from what is not active yet."""

    balance: int
    pending: int
    next_expiry: NextExpiry | None = None


class Balance(BaseModel):
    """A customer's loyalty standing in a programme, computed live as of `as_of`."""

    customer_id: str
    programme: str
    as_of: datetime
    bonus: AccountBalance
    qualification: AccountBalance
    level: str | None

    def view(self) -> dict[str, Any]:
        """What templates see as `customer.loyalty`."""
        nxt = self.bonus.next_expiry
        return {"balance": self.bonus.balance, "pending": self.bonus.pending,
                "level": self.level, "qualification": self.qualification.balance,
                "next_expiry": nxt.model_dump(mode="json") if nxt else None}


class Entry(BaseModel):
    """A statement line: a signed change of one accrual's bucket."""

    id: int
    operation_id: int
    kind: str
    account: Account
    amount: int
    bucket_id: int
    expires_at: datetime | None
    reason: str
    at: datetime

"""What the send activity's phases tell the workflow. Imported by workflow code: no I/O."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from tropa.dsl.plan import StepCall

PREPARE = "send.prepare"
DELIVER = "send.deliver"
# Keys the workflow adds to a phase's params; never written by marketers (`__` is refused
# by the params model).
NOW = "__now"
ROUND = "__round"
CHANNEL = "__channel"


class Prepared(BaseModel):
    """The prepare phase's answer: a final state, a time to come back, or ready to deliver."""

    status: str
    """queued | suppressed | cancelled | accepted | delivered | rejected | quiet"""
    reason: str = ""
    detail: str = ""
    message_id: int | None = None
    wait_until: datetime | None = None
    deliver_queue: str | None = None
    retry_initial_seconds: float = 5.0
    retry_max_interval_seconds: float = 600.0
    deliver_timeout_seconds: float = 30.0
    wants_receipt: bool = False
    receipt_timeout_seconds: float = 172800.0
    redeliver_after_seconds: float = 900.0
    max_rounds: int = 5


class Delivered(BaseModel):
    """The deliver phase's answer: the provider took the message."""

    provider_message_id: str
    provider: str = ""
    receipt_state: str | None = None
    """A receipt that came before the id was committed (delivered, undelivered, rejected):
    the run takes it instead of waiting for one."""
    receipt_reason: str = ""


class ReceiptSignal(BaseModel):
    """A delivery receipt for a run: which provider message, and what became of it."""

    provider_message_id: str
    state: str
    reason: str = ""


def message_key(call: StepCall, channel: str) -> str:
    """The message log key of one step on one channel; unique in the log."""
    return f"{call.idempotency_key}/{channel}"


def round_key(key: str, round_no: int) -> str:
    """The provider idempotency key of one attempt round (a new round after an
    undelivered receipt must not be deduplicated away by the provider)."""
    return key if round_no <= 1 else f"{key}#r{round_no}"

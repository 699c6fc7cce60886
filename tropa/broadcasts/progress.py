"""A broadcast's progress, counted from its recipient list and the message log."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from tropa.broadcasts.pages import journey_of
from tropa.store.broadcast_models import BroadcastRecipient
from tropa.store.models import Message

# Message log states: handed to the provider, or waiting to be.
_SENT = ("accepted", "delivered", "undelivered", "rejected", "sent_unconfirmed")
_QUEUED = ("queued", "retrying")
_FAILED = ("failed", "cancelled")


class Progress(BaseModel):
    """Where every recipient of a broadcast stands; the parts add up to `recipients`."""

    recipients: int = Field(0, description="Customers in the snapshot, holdout included")
    holdout: int = Field(0, description="Recipients held out: they receive nothing")
    pending: int = Field(0, description="Waiting for their wave (or quiet hours to end)")
    queued: int = Field(0, description="Passed the gate, not yet taken by the provider")
    sent: int = Field(0, description="Taken by the provider (delivered ones included)")
    delivered: int = Field(0, description="Confirmed delivered by a receipt")
    suppressed: dict[str, int] = Field(default_factory=dict,
                                       description="Left out by the policy gate, by reason "
                                       "(no_consent, unverified_contact, frequency_cap)")
    failed: int = Field(0, description="Could not be sent (no contact, template error, "
                        "refused by the provider, customer gone) or not sent to this id "
                        "because it was merged into another recipient (merged_customer)")
    failed_by_reason: dict[str, int] = Field(default_factory=dict)
    cancelled: int = Field(0, description="Not sent because the broadcast was cancelled")


def progress(session: Session, broadcast_id: str) -> Progress:
    """Count recipients by state and the broadcast's messages by status."""
    out = Progress()
    by_state = session.exec(
        select(BroadcastRecipient.state, BroadcastRecipient.reason, func.count())
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .group_by(col(BroadcastRecipient.state), col(BroadcastRecipient.reason))).all()
    for state, reason, n in by_state:
        out.recipients += n
        if state == "holdout":
            out.holdout += n
        elif state == "pending":
            out.pending += n
        elif state == "cancelled":
            out.cancelled += n
        elif state == "skipped":
            out.failed += n
            _add(out.failed_by_reason, reason or "skipped", n)
    by_status = session.execute(
        sa.select(Message.status, Message.reason, func.count())  # type: ignore[call-overload]
        .where(Message.journey == journey_of(broadcast_id))
        .group_by(Message.status, Message.reason)).all()
    for status, reason, n in by_status:
        if status in _SENT:
            out.sent += n
            if status == "delivered":
                out.delivered += n
        elif status in _QUEUED:
            out.queued += n
        elif status == "suppressed":
            _add(out.suppressed, reason or "suppressed", n)
        elif status in _FAILED:
            out.failed += n
            _add(out.failed_by_reason, reason or status, n)
    return out


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n

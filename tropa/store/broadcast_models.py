"""Broadcasts: one message to an audience, and the exact list of its recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime

BROADCAST_STATUSES = ("scheduled", "sending", "paused", "completed", "cancelled", "failed")
# A recipient's place in the broadcast: waiting for its wave, handed to the message path
# (the message log has the rest), in the holdout, or left out (broadcast cancelled, customer
# gone).
RECIPIENT_STATES = ("pending", "prepared", "holdout", "cancelled", "skipped")


class Broadcast(SQLModel, table=True):
    """A broadcast: the audience, the send step's parameters, when, the holdout, its state."""

    __tablename__ = "broadcasts"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    status: str = Field(default="scheduled", index=True, max_length=16)
    channel: str = Field(max_length=32)
    audience: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))
    send: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))
    # {"now": true} | {"at": "<instant>"} | {"in_local_time": "10:00"}
    start: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))
    starts_at: datetime = Field(sa_type=UtcDateTime)
    holdout_percent: float = 0.0
    workflow_id: str = Field(max_length=400)
    recipients: int | None = None
    holdout: int | None = None
    snapshot_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BroadcastRecipient(SQLModel, table=True):
    """One customer of a broadcast's snapshot, with the moment its wave goes out."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (sa.Index("ix_broadcast_recipients_due", "broadcast_id", "state",
                               "send_at", "customer_id"),)

    broadcast_id: str = Field(foreign_key="broadcasts.id", primary_key=True, max_length=64)
    customer_id: str = Field(primary_key=True, max_length=128)
    state: str = Field(default="pending", max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    send_at: datetime = Field(sa_type=UtcDateTime)

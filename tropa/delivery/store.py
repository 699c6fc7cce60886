"""The delivery table: one row per attempt round of a message, found by provider id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow


class Delivery(SQLModel, table=True):
    """A message handed (or being handed) to a provider under one idempotency key.

    Round 1 uses the message's own key; a new round after an undelivered receipt gets a
    new key, so the provider does not deduplicate the retry away. Receipts find the run
    through `provider_message_id`.
    """

    __tablename__ = "deliveries"
    # Receipts find a round by provider and provider message id together.
    __table_args__ = (sa.Index("ix_deliveries_provider_provider_message_id", "provider",
                               "provider_message_id"),)

    provider_key: str = Field(primary_key=True, max_length=420)
    message_key: str = Field(index=True, max_length=400)
    round: int = 1
    provider: str = Field(default="", max_length=32)
    provider_message_id: str | None = Field(default=None, index=True, max_length=200)
    status: str = Field(default="sending", max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    # Channel specifics rendered at prepare time (WhatsApp template and parameters).
    options: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=Column(sa.JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class EarlyReceipt(SQLModel, table=True):
    """A receipt that came before Tropa knew the provider's message id.

    A provider may post a receipt before the deliver activity has committed the id it was
    given, or while the worker that made the call is dead; the repeated call then gets the
    existing id and the provider posts no new receipt. The receipt is kept here and the
    deliver phase takes it when it records the id, so the run does not wait in silence.
    """

    __tablename__ = "early_receipts"

    provider_message_id: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))

"""The consent record: every consent change that came from the customer, with its source."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


class ConsentChange(SQLModel, table=True):
    """One change of one consent (category and channel), where it came from and when.

    `source` names the way the customer said it, e.g. `unsubscribe:one_click` (the mail
    client's button, RFC 8058) or `unsubscribe:page` (the link in the mail opened).
    """

    __tablename__ = "consent_changes"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=128)
    category: str = Field(max_length=16)
    channel: str = Field(max_length=32)
    granted: bool
    source: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

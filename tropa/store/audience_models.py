"""Saved audience filters, by name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


class SavedAudience(SQLModel, table=True):
    """A named audience filter: the source as written and its normalised JSON form."""

    __tablename__ = "audiences"

    name: str = Field(primary_key=True, max_length=100)
    description: str = Field(default="", max_length=1000)
    source: str = Field(sa_type=sa.Text)
    filter: dict[str, Any] = Field(sa_column=Column(sa.JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

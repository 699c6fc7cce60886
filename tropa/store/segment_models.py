"""Tables of RF segments: each customer's current segment, the history of moves, daily sizes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


def _aware() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime)


class CustomerSegment(SQLModel, table=True):
    """A customer's current RF segment and since when; no row means no purchase yet."""

    __tablename__ = "customer_segments"
    __table_args__ = (
        sa.Index("ix_customer_segments_segment", "segment", "customer_id"),
        # A full recompute reads customer and segment in customer order from an index alone,
        # merged with the orders' aggregate (see tropa/segments/compute.py): on PostgreSQL
        # the primary key's, which INCLUDEs the segment; on SQLite a second index,
        # `ix_customer_segments_customer_segment` (migrations 0016 and 0017).
    )

    customer_id: str = Field(primary_key=True, max_length=128)
    segment: str = Field(max_length=32)
    since: datetime = _aware()


class SegmentMove(SQLModel, table=True):
    """One move between segments; append-only. `from_segment` None: first segment."""

    __tablename__ = "segment_moves"
    __table_args__ = (sa.Index("ix_segment_moves_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=128)
    from_segment: str | None = Field(default=None, max_length=32)
    to_segment: str | None = Field(default=None, max_length=32)
    at: datetime = _aware()
    cause: str = Field(max_length=16)  # purchase | time | config | refund | merge


class SegmentSnapshot(SQLModel, table=True):
    """How many customers a segment had at the end of a day (UTC)."""

    __tablename__ = "segment_snapshots"

    day: date = Field(primary_key=True)
    segment: str = Field(primary_key=True, max_length=32)
    customers: int = 0


class RfConfigVersion(SQLModel, table=True):
    """An applied RF configuration; the newest row is in force, none means the shipped one."""

    __tablename__ = "rf_configs"

    id: int | None = Field(default=None, primary_key=True)
    source_yaml: str = Field(sa_type=sa.Text)
    applied_at: datetime = _aware()


class SweepMark(SQLModel, table=True):
    """Up to when a periodic sweep has processed, so a late or missed run catches up once."""

    __tablename__ = "sweep_marks"

    name: str = Field(primary_key=True, max_length=200)
    done_until: datetime = Field(sa_type=UtcDateTime)

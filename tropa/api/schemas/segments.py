"""Shapes of the RF segments API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class SegmentSize(BaseModel):
    """One segment now: its name, what it means, how many customers it holds."""

    segment: str
    description: str
    customers: int


class SegmentMovePublic(BaseModel):
    """A move between segments; `from`/`to` null means no segment (no counted purchase)."""

    from_segment: str | None = Field(serialization_alias="from")
    to_segment: str | None = Field(serialization_alias="to")
    at: datetime
    cause: str = Field(description="purchase, time, refund or config")


class CustomerSegmentPublic(BaseModel):
    """A customer's current segment, since when, and every move, oldest first."""

    customer_id: str
    segment: str | None
    since: datetime | None
    history: list[SegmentMovePublic]


class SnapshotPublic(BaseModel):
    """A segment's size at the end of a day (UTC)."""

    day: date
    segment: str
    customers: int


class SegmentMember(BaseModel):
    """A customer in a segment and since when."""

    customer_id: str
    since: datetime


class SegmentMembers(BaseModel):
    """A page of a segment's customers, by id; pass `next_after` as `after` for the next."""

    segment: str
    customers: list[SegmentMember]
    next_after: str | None


class MoveCount(BaseModel):
    """How many customers moved (or would move) from one segment to another."""

    from_segment: str | None = Field(serialization_alias="from")
    to_segment: str | None = Field(serialization_alias="to")
    customers: int


class RfConfigPublic(BaseModel):
    """The RF configuration in force, as YAML; `applied_at` null: Tropa's shipped defaults."""

    source_yaml: str
    applied_at: datetime | None


class RfConfigApplied(BaseModel):
    """What applying a configuration did."""

    moved: int
    events: int

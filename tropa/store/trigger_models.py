"""Tables of the calendar triggers: every customer's dates by month and day, the last event of
each type per customer, and the claims that make each occurrence start one run."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.store.types import UtcDateTime


class CustomerDate(SQLModel, table=True):
    """One date of a customer (`path`, element `item` of a list path, 0 otherwise), with its
    month-day and the customer's zone, so the hourly sweep finds a day's dates by index."""

    __tablename__ = "customer_dates"
    __table_args__ = (sa.Index("ix_customer_dates_path_month_day", "path", "month_day"),)

    customer_id: str = Field(primary_key=True, max_length=128)
    path: str = Field(primary_key=True, max_length=200)
    item: int = Field(default=0, primary_key=True)
    time_zone: str = Field(max_length=64)
    month_day: str = Field(max_length=5)  # 'MM-DD'
    value: date
    item_data: Any = Field(default=None, sa_column=Column(sa.JSON, nullable=True))


class CustomerLastEvent(SQLModel, table=True):
    """The newest event of one type for a customer: what inactivity triggers count from."""

    __tablename__ = "customer_last_events"
    __table_args__ = (sa.Index("ix_customer_last_events_type_at", "event_type", "last_at"),)

    customer_id: str = Field(primary_key=True, max_length=128)
    event_type: str = Field(primary_key=True, max_length=200)
    last_at: datetime = Field(sa_type=UtcDateTime)
    event_id: str = Field(max_length=200)


class TriggerClaim(SQLModel, table=True):
    """One occurrence of a date or inactivity trigger for one customer, claimed by a sweep;
    `started_at` stays empty until its run is started (a crash in between is retried)."""

    __tablename__ = "trigger_claims"

    journey: str = Field(primary_key=True, max_length=200)
    customer_id: str = Field(primary_key=True, max_length=128)
    occurrence: str = Field(primary_key=True, max_length=200)
    workflow_id: str = Field(max_length=600)
    due_at: datetime = Field(sa_type=UtcDateTime)
    claimed_at: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    data: Any = Field(default=None, sa_column=Column(sa.JSON, nullable=True))

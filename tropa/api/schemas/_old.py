"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EventCreate(BaseModel):
    """An event from a shop, POS or CRM."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200, description="Unique per event; "
                          "a repeat is acknowledged as a duplicate", examples=["evt-1001"])
    type: str = Field(min_length=1, max_length=200, examples=["cart.updated"])
    customer_id: str = Field(min_length=1, max_length=128, examples=["c-42"])
    occurred_at: AwareDatetime = Field(description="When it happened, with a UTC offset")
    data: dict[str, Any] = Field(default_factory=dict)


class EventAccepted(BaseModel):
    """What Tropa did with an event."""

    event_id: str
    status: Literal["accepted", "duplicate"]
    started: list[str] = Field(default_factory=list, description="Workflow IDs of new runs")
    signalled: list[str] = Field(default_factory=list, description="Runs that got the event")
    skipped: list[dict[str, str]] = Field(default_factory=list)


class CustomerUpsert(BaseModel):
    """A customer's data as an API client keeps it in sync."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = None
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, examples=["+7 916 123-45-67"])
    phone_verified: bool = False
    email: str | None = Field(default=None, max_length=320)
    email_verified: bool = False
    time_zone: str = Field(default="UTC", examples=["Europe/Moscow"])
    locale: str = "ru"
    birthday: date | None = None
    consents: dict[Literal["marketing", "service"], dict[str, bool]] = Field(
        default_factory=dict, examples=[{"marketing": {"sms": True, "email": True}}])
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)


class CustomerPublic(CustomerUpsert):
    """A stored customer."""

    id: str
    created_at: datetime
    updated_at: datetime


class JourneyVersionPublic(BaseModel):
    """One stored version of a journey."""

    journey: str
    version: str
    created_at: datetime
    published_at: datetime | None
    source_yaml: str
    plan: dict[str, Any]


class JourneyPublic(BaseModel):
    """A journey with its versions."""

    name: str
    status: str
    live_version: str | None
    versions: list[JourneyVersionPublic] = Field(default_factory=list)


class ProblemOut(BaseModel):
    """One error in a journey file."""

    message: str
    line: int | None
    column: int | None
    path: str
    hint: str | None
    text: str

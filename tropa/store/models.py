"""SQLModel tables: customers, events, journeys and their versions, the message log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from tropa.clock import utcnow
from tropa.store.types import UtcDateTime


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(sa.JSON, nullable=False), **kwargs)


def _aware() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime)


# Bumped by every ORM update of a customer and checked in its WHERE clause (SQLAlchemy's
# version counter); the API shows it as the ETag. See tropa/store/customer_lock.py.
_CUSTOMER_VERSION = Column("version", sa.Integer, nullable=False, server_default="1")


class Customer(SQLModel, table=True):
    """A shopper: contacts, verification, time zone, consents, tags and attributes."""

    __tablename__ = "customers"
    __mapper_args__ = {"version_id_col": _CUSTOMER_VERSION}

    id: str = Field(primary_key=True, max_length=128)
    external_id: str | None = Field(default=None, index=True, max_length=128)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, index=True, max_length=32)
    phone_verified: bool = False
    email: str | None = Field(default=None, index=True, max_length=320)
    email_verified: bool = False
    time_zone: str = Field(default="UTC", max_length=64)
    locale: str = Field(default="ru", max_length=16)
    birthday: date | None = None
    # {"marketing": {"sms": true, "email": false}, "service": {...}}
    consents: dict[str, dict[str, bool]] = _json(default_factory=dict)
    tags: list[str] = _json(default_factory=list)
    attributes: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _aware()
    updated_at: datetime = _aware()
    registered_at: date | None = None
    version: int = Field(default=1, sa_column=_CUSTOMER_VERSION)


class Event(SQLModel, table=True):
    """An event fired by an API client; `event_id` is unique, so a repeat is a no-op."""

    __tablename__ = "events"

    event_id: str = Field(primary_key=True, max_length=200)
    type: str = Field(index=True, max_length=200)
    customer_id: str = Field(index=True, max_length=128)
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = _aware()
    data: dict[str, Any] = _json(default_factory=dict)
    # Routing is claimed before it starts and marked when done, so a request that failed
    # half-way can be repeated with the same event_id and is routed then, exactly once.
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    routed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    routed_to: list[str] = _json(default_factory=list)


class Journey(SQLModel, table=True):
    """A journey by name, with its live (published) version and status."""

    __tablename__ = "journeys"

    name: str = Field(primary_key=True, max_length=200)
    status: str = Field(default="draft", max_length=16)  # draft|published|paused|archived
    live_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = _aware()
    updated_at: datetime = _aware()


class JourneyVersion(SQLModel, table=True):
    """One version of a journey: its source YAML and compiled Plan."""

    __tablename__ = "journey_versions"
    __table_args__ = (sa.UniqueConstraint("journey", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    journey: str = Field(foreign_key="journeys.name", index=True, max_length=200)
    version: str = Field(max_length=64)
    source_yaml: str = Field(sa_type=sa.Text)
    plan: dict[str, Any] = _json()
    created_at: datetime = _aware()
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Message(SQLModel, table=True):
    """The message log: one row per send, unique by idempotency key."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=400)
    journey: str = Field(index=True, max_length=200)
    workflow_id: str = Field(index=True, max_length=400)
    step_id: str = Field(max_length=200)
    customer_id: str = Field(index=True, max_length=128)
    channel: str = Field(max_length=32)
    category: str = Field(max_length=16)
    recipient: str = Field(default="", max_length=320)
    subject: str | None = Field(default=None, max_length=500)
    text: str = Field(default="", sa_type=sa.Text)
    html: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default="pending", index=True, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    provider_message_id: str | None = Field(default=None, index=True, max_length=200)
    # Which provider the id belongs to: receipts are matched by both, ids are not unique
    # across providers.
    provider: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    history: list[dict[str, Any]] = _json(default_factory=list)
    created_at: datetime = _aware()
    updated_at: datetime = _aware()


class ActiveRun(SQLModel, table=True):
    """Runs that may be waiting for events, so listeners are found without visibility lag.

    A row is written when a run starts and removed when a signal finds the run closed.
    """

    __tablename__ = "active_runs"
    __table_args__ = (sa.Index("ix_active_runs_journey_customer", "journey", "customer_id"),)

    workflow_id: str = Field(primary_key=True, max_length=400)
    journey: str = Field(max_length=200)
    customer_id: str = Field(max_length=128)
    started_at: datetime = _aware()


class SideEffect(SQLModel, table=True):
    """Non-message side effects (customer updates) applied once per idempotency key."""

    __tablename__ = "side_effects"

    idempotency_key: str = Field(primary_key=True, max_length=400)
    kind: str = Field(max_length=64)
    customer_id: str = Field(index=True, max_length=128)
    result: dict[str, Any] = _json(default_factory=dict)
    applied_at: datetime = _aware()


class ApiKey(SQLModel, table=True):
    """An API key, stored as a SHA-256 hash with its scopes."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    key_hash: str = Field(unique=True, max_length=128)
    scopes: list[str] = _json(default_factory=list)
    created_at: datetime = _aware()
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)



# The customers domain's tables (cards, orders, audit, ...) live in their own module.
from tropa.store import audience_models as _audience_models  # noqa: E402, F401
from tropa.store import broadcast_models as _broadcast_models  # noqa: E402, F401
from tropa.store import customer_dates as _customer_dates  # noqa: E402, F401
from tropa.store import customer_models as _customer_models  # noqa: E402, F401
from tropa.store import loyalty_models as _loyalty_models  # noqa: E402, F401
from tropa.store import segment_models as _segment_models  # noqa: E402, F401
from tropa.store import task_models as _task_models  # noqa: E402, F401
from tropa.store.consent_models import ConsentChange as ConsentChange  # noqa: E402

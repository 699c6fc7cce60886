"""Events: one at a time or in batches of up to 1,000."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from tropa.api.errors import FieldError
from tropa.api.schemas.common import CustomerIdField, JsonObject, Text

MAX_BATCH = 1000
# Events happen in this span (UTC); outside it an offset could push the instant past the
# calendar's ends (year 1 or 9999), which no database column or timer can hold.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_span(value: datetime) -> datetime:
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant < LATEST:
        raise ValueError("is out of range: give a time from 1900-01-01 to 2199-12-31 (UTC), "
                         "with its UTC offset")
    return value


EventTime = Annotated[AwareDatetime, AfterValidator(_in_span)]


class EventCreate(BaseModel):
    """An event from a shop, POS or CRM."""

    model_config = ConfigDict(extra="forbid")

    event_id: Text = Field(min_length=1, max_length=200, description="Unique per event; "
                           "a repeat is acknowledged as a duplicate", examples=["evt-1001"])
    type: Text = Field(min_length=1, max_length=200, examples=["cart.updated"])
    customer_id: CustomerIdField
    occurred_at: EventTime = Field(description="When it happened, with a UTC offset; "
                                   "between 1900-01-01 and 2199-12-31 (UTC)")
    data: JsonObject = Field(default_factory=dict)


class EventAccepted(BaseModel):
    """What Tropa did with an event."""

    event_id: str
    status: Literal["accepted", "duplicate"]
    started: list[str] = Field(default_factory=list, description="Workflow IDs of new runs")
    signalled: list[str] = Field(default_factory=list, description="Runs that got the event")
    skipped: list[dict[str, str]] = Field(default_factory=list)


# Items are validated one by one, so one bad item is reported and its neighbours still go.
RawEvents = Annotated[
    list[Any],
    WithJsonSchema({"type": "array", "maxItems": MAX_BATCH,
                    "items": {"$ref": "#/components/schemas/EventCreate"}}),
]


class EventBatch(BaseModel):
    """Up to 1,000 events; each is accepted, a duplicate, or rejected on its own."""

    model_config = ConfigDict(extra="forbid")

    events: RawEvents = Field(max_length=MAX_BATCH)


class BatchItem(BaseModel):
    """The outcome of one event of a batch, at its index."""

    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(default=None, description="Why an item was rejected")
    retryable: bool = Field(default=False, description="True when sending the item again "
                            "with the same event_id may succeed (Temporal was unavailable)")
    errors: list[FieldError] = Field(default_factory=list)
    started: list[str] = Field(default_factory=list)
    signalled: list[str] = Field(default_factory=list)
    skipped: list[dict[str, str]] = Field(default_factory=list)


class BatchResult(BaseModel):
    """Counts per outcome and one item per event, in request order."""

    accepted: int
    duplicate: int
    rejected: int
    items: list[BatchItem]

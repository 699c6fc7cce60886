"""Cards, tag definitions and the audit history of a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tropa.api.schemas.common import Text
from tropa.customers.orders import Moment

BARCODE_PATTERN = r"^[0-9A-Za-z-]{1,64}$"
CardStatus = Literal["active", "blocked"]


class CardPut(BaseModel):
    """A loyalty card's data; the barcode is in the path."""

    model_config = ConfigDict(extra="forbid")

    track: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="The magnetic track; unique across cards",
        examples=[";2900001234567=2512?"])
    issued_at: Moment | None = None
    status: CardStatus = "active"


class CardPublic(BaseModel):
    """A card and its holder."""

    customer_id: str
    barcode: str
    track: str | None
    issued_at: datetime | None
    status: CardStatus
    created_at: datetime
    updated_at: datetime


class TagPut(BaseModel):
    """A tag's colour and description."""

    model_config = ConfigDict(extra="forbid")

    colour: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$", examples=["#ff8800"])
    description: Annotated[Text, Field(max_length=1000)] | None = None


class TagPublic(TagPut):
    """A defined tag."""

    model_config = ConfigDict(extra="ignore")

    name: str
    created_at: datetime
    updated_at: datetime


class HistoryEntry(BaseModel):
    """One change: what, by whom, when; contacts and names show only that they changed."""

    id: int
    entity: Literal["customer", "card", "order", "tag", "consent"]
    entity_id: str
    action: str
    actor_kind: Literal["api_key", "import", "journey", "cli", "system"]
    actor_id: str | None
    actor_name: str | None
    changes: dict[str, Any]
    at: datetime

"""Customers: contacts, consents by category and channel, tags, attributes."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from tropa.api.errors import FieldError
from tropa.api.schemas.common import CustomerIdField, JsonObject, Text
from tropa.clock import utcnow

Category = Literal["marketing", "service"]
Channel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["sms"])]
Tag = Annotated[Text, Field(min_length=1, max_length=100)]


# Real places only: `Area/Location` (and `UTC`). The tz database also holds names that
# are no place at all (`localtime`, `posixrules`, `Factory`, `right/UTC`, `posix/...`),
# whose meaning depends on the machine or which are leap-second variants.
_REGION = re.compile(r"^(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|"
                     r"Indian|Pacific)(/[A-Za-z0-9_+-]+){1,2}$")


def _zone(name: str) -> str:
    problem = f"{name!r} is not an IANA region time zone; give Area/Location such as " \
              "Europe/Moscow or Asia/Yekaterinburg, or UTC"
    if name != "UTC" and not _REGION.match(name):
        raise ValueError(problem)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(problem) from exc
    return name


def _born(day: date) -> date:
    # Somewhere on Earth (UTC+14) it is already tomorrow; later than that is not a birthday.
    latest = (utcnow() + timedelta(hours=14)).date()
    if day > latest:
        raise ValueError(f"is in the future ({day.isoformat()}); give the date of birth")
    if day.year < 1900:
        raise ValueError(f"is before 1900 ({day.isoformat()}); give the date of birth")
    return day


TimeZone = Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Moscow"]),
                     AfterValidator(_zone)]
Birthday = Annotated[date, AfterValidator(_born)]
Consents = dict[Category, dict[Channel, bool]]


class CustomerBase(BaseModel):
    """A customer's data as an API client keeps it in sync."""

    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[Text, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="The id in the client's own system; unique")
    first_name: Annotated[Text, Field(max_length=200)] | None = None
    last_name: Annotated[Text, Field(max_length=200)] | None = None
    phone: Annotated[Text, Field(max_length=32)] | None = Field(
        default=None, description="Any usual format; stored in E.164",
        examples=["+7 916 123-45-67"])
    phone_verified: bool = False
    email: Annotated[Text, Field(max_length=320)] | None = None
    email_verified: bool = False
    time_zone: TimeZone = "UTC"
    locale: Annotated[str, Field(pattern=r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")] = "ru"
    birthday: Birthday | None = None
    consents: Consents = Field(default_factory=dict,
                               examples=[{"marketing": {"sms": True, "email": True}}])
    tags: list[Tag] = Field(default_factory=list, max_length=200)
    attributes: JsonObject = Field(default_factory=dict)
    registered_at: date | None = Field(default=None, description="When the customer joined")


class CustomerUpsert(CustomerBase):
    """The whole customer, for PUT: fields left out take their defaults."""


class CustomerUpdate(BaseModel):
    """Fields to change, for PATCH: fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[Text, Field(min_length=1, max_length=128)] | None = None
    first_name: Annotated[Text, Field(max_length=200)] | None = None
    last_name: Annotated[Text, Field(max_length=200)] | None = None
    phone: Annotated[Text, Field(max_length=32)] | None = None
    phone_verified: bool | None = None
    email: Annotated[Text, Field(max_length=320)] | None = None
    email_verified: bool | None = None
    time_zone: TimeZone | None = None
    locale: Annotated[str, Field(pattern=r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")] | None = None
    birthday: Birthday | None = None
    registered_at: date | None = None


class CustomerPublic(CustomerBase):
    """A stored customer."""

    model_config = ConfigDict(extra="ignore")

    # What is stored is shown as it is, even if written before today's checks.
    time_zone: str = "UTC"
    birthday: date | None = None
    id: str
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Goes up with every change; the ETag is this number in "
                         'quotes, `"7"`', examples=[7])


class ConsentSet(BaseModel):
    """Consent to messages of one category over one channel."""

    model_config = ConfigDict(extra="forbid")

    granted: bool


class TagChange(BaseModel):
    """Tags to add and to remove; adding a present tag or removing an absent one is a no-op."""

    model_config = ConfigDict(extra="forbid")

    add: list[Tag] = Field(default_factory=list, max_length=200)
    remove: list[Tag] = Field(default_factory=list, max_length=200)


class CustomerBulkItem(CustomerUpsert):
    """One customer of a bulk upsert, with its id."""

    id: CustomerIdField


# Items are validated one by one so one bad customer never holds up the others.
RawCustomers = Annotated[
    list[Any],
    WithJsonSchema({"type": "array", "maxItems": 1000,
                    "items": CustomerBulkItem.model_json_schema()}),
]


class CustomerBulk(BaseModel):
    """Up to 1,000 customers to create or replace; each succeeds or fails on its own."""

    model_config = ConfigDict(extra="forbid")

    customers: RawCustomers = Field(max_length=1000)


class BulkOutcome(BaseModel):
    """What happened to one customer of a bulk upsert."""

    index: int
    id: str
    status: Literal["created", "updated", "rejected"]
    reason: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class BulkResult(BaseModel):
    """Counts per outcome and one item per customer, in request order."""

    created: int
    updated: int
    rejected: int
    items: list[BulkOutcome]

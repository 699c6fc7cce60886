"""An audience filter as a tree of conditions: what the parser builds and the SQL compiler reads.

Every leaf is two-valued (a customer matches or does not), so `not:` is the plain opposite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

Scalar = str | int | float | bool | date | datetime
Op = tuple[str, Any]
"""An operator and its checked value, e.g. ("gte", 2), ("in", ("a", "b")), ("within", 86400)."""

Identifier = Literal["phone", "email", "card", "external_id"]
IDENTIFIERS: tuple[str, ...] = ("phone", "email", "card", "external_id")

FieldKind = Literal["text", "bool", "date", "datetime", "json"]
PROFILE_FIELDS: dict[str, FieldKind] = {
    "external_id": "text", "first_name": "text", "last_name": "text", "phone": "text",
    "email": "text", "time_zone": "text", "locale": "text",
    "phone_verified": "bool", "email_verified": "bool",
    "birthday": "date", "registered_at": "date",
    "created_at": "datetime", "updated_at": "datetime",
}
"""The profile columns a `field:` may name; anything else lives under `attributes.`."""


@dataclass(frozen=True)
class All:
    """Every item matches (`all: []` matches everyone)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item matches (`any: []` matches no one)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The item does not match."""

    item: Condition


@dataclass(frozen=True)
class Has:
    """The customer has this identifier (a non-empty phone, email, external id; a card)."""

    identifier: str


@dataclass(frozen=True)
class FieldCond:
    """A profile field or attribute path compared by every operator in `ops` (all must hold).

    `path` is `birthday`, `attributes.city`, `attributes.a.b` or `attributes.kids[].birth_date`;
    `kind` says how it is stored; `date_path` is the customer_dates path when the value is a
    date that table indexes by month and day."""

    path: str
    kind: FieldKind
    keys: tuple[str, ...]
    date_path: str | None
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Tag:
    """The customer carries this tag."""

    name: str


@dataclass(frozen=True)
class Consent:
    """Messages of `category` may go to the customer on `channel` (marketing needs a yes)."""

    category: str
    channel: str


@dataclass(frozen=True)
class Segment:
    """The customer's current RF segment is one of `names`."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Loyalty:
    """Live bonus balance (operators) and/or stored level (one of `levels`) in a programme."""

    programme: str
    balance: tuple[Op, ...]
    levels: tuple[str, ...] | None


@dataclass(frozen=True)
class Purchases:
    """Counted purchases within `within_seconds` (all time when None), optionally in one
    currency: their number and their sum (total - refunded, minor units)."""

    within_seconds: int | None
    currency: str | None
    count: tuple[Op, ...]
    sum: tuple[Op, ...]


@dataclass(frozen=True)
class LastPurchase:
    """When the last purchase was: `within`, `older_than` (seconds), `exists` (bool)."""

    ops: tuple[Op, ...]


Condition = All | AnyOf | Not | Has | FieldCond | Tag | Consent | Segment | Loyalty | Purchases \
    | LastPurchase


@dataclass(frozen=True)
class Audience:
    """A checked filter: its normalised JSON form (`spec`, what is stored and sent to
    workflows) and the condition tree compiled to SQL."""

    spec: dict[str, Any]
    root: Condition

"""Finding a customer by any identifier, and keeping every identifier unique across customers.

An identifier is a Tropa id (or an id merged into another customer), an external id, a phone
(any usual format, stored in E.164), an email (normalised), or a card's barcode or magnetic
track.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, or_, select

from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.store.customer_models import Card, CustomerAlias
from tropa.store.models import Customer

IdentifierType = Literal["id", "external_id", "phone", "email", "card"]
UNIQUE_FIELDS = ("external_id", "phone", "email")


class Identifier(BaseModel):
    """One way to name a customer: `{"type": "card", "value": "2900001234567"}`."""

    model_config = ConfigDict(extra="forbid")

    type: IdentifierType = Field(description="Which identifier `value` is")
    value: str = Field(min_length=1, max_length=320, pattern=r"^[^\x00]+$",
                       examples=["2900001234567"])


class CustomerNotFound(LookupError):
    """No customer with that identifier; the message names it."""


class IdentifierInvalid(ValueError):
    """A phone or email that cannot be normalised; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IdentifierTaken(ValueError):
    """The identifier belongs to another customer, named by `other_id`."""

    def __init__(self, field: str, other_id: str | None, message: str | None = None) -> None:
        self.field = field
        self.other_id = other_id
        owner = f"customer {other_id!r}" if other_id else "another customer"
        super().__init__(message or f"{field} already belongs to {owner}; "
                         "merge the two customers or use another value")


def normalised(identifier: Identifier) -> Identifier:
    """The identifier as stored: phones in E.164, emails normalised, other values trimmed."""
    value = identifier.value.strip()
    if not value:
        # Blank padding around nothing names no customer; it is the caller's input to fix.
        raise IdentifierInvalid(identifier.type, f"{identifier.type} is blank; "
                                "give the identifier's value")
    try:
        if identifier.type == "phone":
            value = normalise_phone(value)
        elif identifier.type == "email":
            value = normalise_email(value)
    except ContactInvalid as exc:
        raise IdentifierInvalid(identifier.type, str(exc)) from exc
    return Identifier(type=identifier.type, value=value)


def canonical_id(session: Session, customer_id: str) -> str | None:
    """The id of the customer known by `customer_id`, following a merge; None if unknown."""
    if session.get(Customer, customer_id) is not None:
        return customer_id
    alias = session.get(CustomerAlias, customer_id)
    return alias.customer_id if alias is not None else None


def aliases_of(session: Session, ids: set[str]) -> dict[str, str]:
    """Of these ids, those merged into another customer, with the survivor's id."""
    if not ids:
        return {}
    rows = session.exec(select(CustomerAlias).where(col(CustomerAlias.alias_id).in_(ids)))
    return {a.alias_id: a.customer_id for a in rows}


def find_id(session: Session, identifier: Identifier) -> str | None:
    """The id of the customer with this identifier, or None."""
    ident = normalised(identifier)
    if ident.type == "id":
        return canonical_id(session, ident.value)
    if ident.type == "card":
        return session.exec(select(Card.customer_id).where(
            or_(Card.barcode == ident.value, Card.track == ident.value))).first()
    column = getattr(Customer, ident.type)
    return session.exec(select(Customer.id).where(column == ident.value)).first()


def resolve(session: Session, identifier: Identifier) -> Customer:
    """The customer with this identifier, or CustomerNotFound naming it.

    A phone or email value that cannot be parsed raises IdentifierInvalid.
    """
    customer_id = find_id(session, identifier)
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer is None:
        shown = identifier.value if identifier.type in ("id", "external_id", "card") else "given"
        raise CustomerNotFound(f"no customer with {identifier.type} {shown!r}" if shown != "given"
                               else f"no customer with that {identifier.type}")
    return customer


def resolve_card(session: Session, value: str) -> Card:
    """The card with this barcode or track, or CustomerNotFound."""
    card = session.exec(select(Card).where(
        or_(Card.barcode == value.strip(), Card.track == value.strip()))).first()
    if card is None:
        raise CustomerNotFound(f"no card with barcode or track {value!r}")
    return card


def clean_identifiers(data: dict[str, Any]) -> dict[str, Any]:
    """Empty external id, phone or email become None; phone and email normalised (in place)."""
    for name in UNIQUE_FIELDS:
        if name in data and isinstance(data[name], str) and not data[name].strip():
            data[name] = None
    for name, fn in (("phone", normalise_phone), ("email", normalise_email)):
        if data.get(name):
            try:
                data[name] = fn(data[name])
            except ContactInvalid as exc:
                raise IdentifierInvalid(name, str(exc)) from exc
    return data


def check_unique(session: Session, customer_id: str, data: dict[str, Any]) -> None:
    """IdentifierTaken if an external id, phone or email in `data` is another customer's."""
    for name in UNIQUE_FIELDS:
        value = data.get(name)
        if not value:
            continue
        column = getattr(Customer, name)
        other = session.exec(select(Customer.id).where(column == value,
                                                       Customer.id != customer_id)).first()
        if other is not None:
            raise IdentifierTaken(name, other)


def check_card_free(session: Session, barcode: str | None, track: str | None,
                    card_id: int | None = None) -> None:
    """IdentifierTaken if the barcode or track is already on another card (or another's track)."""
    for value in (barcode, track):
        if not value:
            continue
        query = select(Card).where(or_(Card.barcode == value, Card.track == value))
        if card_id is not None:
            query = query.where(Card.id != card_id)
        other = session.exec(query).first()
        if other is not None:
            raise IdentifierTaken("card", other.customer_id,
                                  f"card {value!r} already belongs to customer "
                                  f"{other.customer_id!r}")

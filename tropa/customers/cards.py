"""Loyalty cards: a customer may hold several; barcode and track unique across all cards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.customers.audit import Actor, diff, record
from tropa.customers.identifiers import IdentifierTaken, check_card_free
from tropa.customers.view import load_or_fail
from tropa.store.customer_models import Card


def _fields(card: Card) -> dict[str, Any]:
    return {"barcode": card.barcode, "track": card.track, "issued_at": card.issued_at,
            "status": card.status}


def put_card(session: Session, *, customer_id: str, barcode: str, track: str | None,
             issued_at: datetime | None, status: str, actor: Actor) -> tuple[Card, bool]:
    """Issue or change a customer's card; IdentifierTaken if it is another customer's."""
    customer = load_or_fail(session, customer_id)
    card = session.exec(select(Card).where(Card.barcode == barcode)).first()
    if card is not None and card.customer_id != customer.id:
        raise IdentifierTaken("card", card.customer_id, f"card {barcode!r} already belongs to "
                              f"customer {card.customer_id!r}")
    check_card_free(session, None, track, card.id if card is not None else None)
    if track == barcode and card is None:
        check_card_free(session, barcode, None)
    created = card is None
    before = {} if card is None else _fields(card)
    if card is None:
        card = Card(customer_id=customer.id, barcode=barcode)
    card.track, card.issued_at, card.status = track, issued_at, status
    changes = diff(before, _fields(card))
    if changes:
        card.updated_at = utcnow()
        session.add(card)
        try:
            session.flush()
        except IntegrityError as exc:
            session.rollback()
            raise IdentifierTaken("card", None, f"card {barcode!r} or its track is already "
                                  "another customer's") from exc
        record(session, customer_id=customer.id, entity="card", entity_id=barcode,
               action="created" if created else "updated", actor=actor, changes=changes)
    return card, created


def cards_of(session: Session, customer_id: str) -> list[Card]:
    """A customer's cards, oldest first."""
    customer = load_or_fail(session, customer_id)
    return list(session.exec(select(Card).where(Card.customer_id == customer.id)
                             .order_by(col(Card.id))))

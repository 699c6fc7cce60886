"""Receipts into the message log: find the message by provider id, record what happened."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from tropa.channels.receipts import Receipt
from tropa.clock import utcnow
from tropa.delivery.prepare import note
from tropa.delivery.store import Delivery, EarlyReceipt
from tropa.store.db import session_scope
from tropa.store.models import Message

EARLY_RECEIPTS_KEPT = timedelta(days=7)
_MESSAGE_STATUS = {"delivered": "delivered", "undelivered": "undelivered",
                   "rejected": "rejected"}


def signature_ok(secret: str, raw: bytes, header: str | None) -> bool:
    """Whether `X-Tropa-Signature: sha256=<hex>` is the HMAC-SHA256 of the body."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def record_receipt(engine: sa.Engine, provider: str, receipt: Receipt,
                   message_id: int | None = None) -> str | None:
    """Record a receipt; the run's workflow id, or None when the message is not known.

    The message is found by provider and provider message id together (ids are the
    provider's own and repeat across providers, and across a provider's restarts); a
    receipt that came to a message's callback URL (`message_id`) reaches that message only.
    Of several rounds with the same id, the newest is meant.

    An unknown id is kept as an early receipt for the deliver phase to take when it
    commits that id (see `take_early`); looked up once more after keeping it, so a commit
    in between is not missed by both sides."""
    found = _apply(engine, receipt, provider, message_id)
    if found is None:
        _keep_early(engine, receipt)
        found = _apply(engine, receipt, provider, message_id)
        if found is not None:  # committed meanwhile: this receipt is no longer early
            with session_scope(engine) as session:
                take_early(session, receipt.provider_message_id)
    return found


def settle_early(engine: sa.Engine, provider_message_id: str,
                 provider: str | None = None) -> Receipt | None:
    """Record the early receipt of a just committed provider id, if one came; the deliver
    phase hands it to the run, which then has no receipt to wait for."""
    with session_scope(engine) as session:
        early = take_early(session, provider_message_id)
        if early is None:
            return None
        receipt = Receipt(provider_message_id=provider_message_id, state=early.state,
                          reason=early.reason or "")
        _apply_in(session, receipt, provider, None)
    return receipt


def _keep_early(engine: sa.Engine, receipt: Receipt) -> None:
    now = utcnow()
    with contextlib.suppress(sa.exc.IntegrityError), session_scope(engine) as session:
        # Receipts of ids no deliver phase ever commits (another system's messages) go
        # after a week: the table stays small.
        session.execute(sa.delete(EarlyReceipt).where(
            col(EarlyReceipt.received_at) < now - EARLY_RECEIPTS_KEPT))
        early = session.get(EarlyReceipt, receipt.provider_message_id) or EarlyReceipt(
            provider_message_id=receipt.provider_message_id, state=receipt.state)
        early.state, early.reason, early.received_at = (receipt.state, receipt.reason or None,
                                                        now)
        session.add(early)


def take_early(session: Session, provider_message_id: str) -> EarlyReceipt | None:
    """The receipt that came before this id was committed, if one did; it is used up."""
    early = session.get(EarlyReceipt, provider_message_id)
    if early is not None:
        session.delete(early)
    return early


def _apply(engine: sa.Engine, receipt: Receipt, provider: str | None,
           message_id: int | None) -> str | None:
    with session_scope(engine) as session:
        return _apply_in(session, receipt, provider, message_id)


def _apply_in(session: Session, receipt: Receipt, provider: str | None,
              message_id: int | None) -> str | None:
    now = utcnow()
    query = select(Delivery).where(Delivery.provider_message_id == receipt.provider_message_id)
    if provider is not None:
        query = query.where(Delivery.provider == provider)
    if message_id is not None:
        query = query.join(Message, col(Message.idempotency_key) == Delivery.message_key
                           ).where(Message.id == message_id)
    delivery = session.exec(query.order_by(col(Delivery.created_at).desc(),
                                           col(Delivery.round).desc())).first()
    if delivery is None:
        return None
    message = session.exec(select(Message).where(
        Message.idempotency_key == delivery.message_key)).one()
    delivery.status, delivery.reason, delivery.updated_at = (
        receipt.state, receipt.reason or None, now)
    session.add(delivery)
    # Only the newest round speaks for the message; a late receipt of an older round
    # is kept on its delivery row.
    if message.provider_message_id == receipt.provider_message_id:
        message.status = _MESSAGE_STATUS.get(receipt.state, message.status)
        message.reason = receipt.reason or None
        note(message, message.status, f"receipt: {receipt.state} {receipt.reason}".strip(),
             now)
        session.add(message)
    return message.workflow_id

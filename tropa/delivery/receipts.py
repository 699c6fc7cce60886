"""Receipts into the message log: find the message by provider id, record what happened."""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from sqlmodel import col, select

from tropa.channels.receipts import Receipt
from tropa.clock import utcnow
from tropa.delivery.prepare import note
from tropa.delivery.store import Delivery
from tropa.store.db import session_scope
from tropa.store.models import Message

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
    Of several rounds with the same id, the newest is meant."""
    now = utcnow()
    with session_scope(engine) as session:
        query = select(Delivery).where(
            Delivery.provider == provider,
            Delivery.provider_message_id == receipt.provider_message_id)
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

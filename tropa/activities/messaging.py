"""The send path: consent, contact, rendering, the message log and the provider call.

Every message row is unique by its idempotency key (run + step + channel), so a retried
activity finds the row it wrote before and never hands the message to a provider twice
once the provider has accepted it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from tropa.channels.base import ChannelAdapter, OutgoingMessage
from tropa.channels.catalog import CHANNELS
from tropa.activities.customer_context import customer_view, load_customer
from tropa.clock import utcnow
from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.dsl.expressions import ExpressionError, render
from tropa.dsl.plan import StepCall, StepResult
from tropa.errors import MessageInvalid, ProviderUnavailable
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Customer, Message

log = get_logger("send")
DONE = {"accepted", "delivered", "suppressed", "cancelled"}


class SendService:
    """Sends one message of one step, exactly once."""

    def __init__(
        self, engine: sa.Engine, adapters: dict[str, ChannelAdapter], settings: Settings
    ) -> None:
        self._engine = engine
        self._adapters = adapters
        self._settings = settings

    def send(self, call: StepCall, *, attempt: int) -> StepResult:
        """Perform a `send` step; content errors are final, provider trouble retries."""
        channel = str(call.params["channel"])
        key = f"{call.idempotency_key}/{channel}"
        with session_scope(self._engine) as session:
            existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
            message = existing or self._prepare(session, call, channel, key)
        # Outside the transaction: a cancelled message stays recorded when _result raises.
        if message.status in DONE:
            return _result(message)
        return self._deliver(message, attempt)

    def _prepare(self, session: Session, call: StepCall, channel: str, key: str) -> Message:
        customer = load_customer(session, call.run.customer_id)
        category = str(call.params.get("category") or call.run.category)
        message = Message(
            idempotency_key=key,
            journey=call.run.journey,
            workflow_id=call.run.workflow_id,
            step_id=call.step_id,
            customer_id=customer.id,
            channel=channel,
            category=category,
        )
        problem = self._gate(customer, channel, category)
        if problem is None:
            try:
                message.recipient = self._recipient(customer, channel)
                context = {**call.context, "customer": customer_view(customer)}
                message.text = render(str(call.params.get("text") or ""), context)
                if call.params.get("subject"):
                    message.subject = render(str(call.params["subject"]), context)
                if call.params.get("html"):
                    message.html = render(str(call.params["html"]), context)
                self._adapters[channel].validate(self._outgoing(message))
            except (ContactInvalid, MessageInvalid, ExpressionError) as exc:
                problem = ("cancelled", _reason(exc), str(exc))
        if problem is not None:
            status, reason, detail = problem
            message.status, message.reason = status, reason
            _note(message, status, detail)
        session.add(message)
        session.flush()
        return message

    def _gate(self, customer: Customer, channel: str, category: str) -> tuple[str, str, str] | None:
        if category == "marketing" and not customer.consents.get("marketing", {}).get(channel):
            return ("suppressed", "no_consent",
                    f"no marketing consent for {channel}; the message was not sent")
        return None

    def _recipient(self, customer: Customer, channel: str) -> str:
        contact = CHANNELS[channel]
        if contact == "phone":
            if not customer.phone:
                raise ContactInvalid("the customer has no phone number")
            return normalise_phone(customer.phone)
        if contact == "email":
            if not customer.email:
                raise ContactInvalid("the customer has no email address")
            return normalise_email(customer.email)
        raise ContactInvalid(f"channel {channel} has no contact kind")

    def _outgoing(self, message: Message) -> OutgoingMessage:
        return OutgoingMessage(
            idempotency_key=message.idempotency_key,
            channel=message.channel,
            category=message.category,
            recipient=message.recipient,
            text=message.text,
            subject=message.subject,
            html=message.html,
        )

    def _deliver(self, message: Message, attempt: int) -> StepResult:
        adapter = self._adapters[message.channel]
        try:
            accepted = adapter.send(self._outgoing(message))
        except MessageInvalid as exc:
            self._update(message, "cancelled", exc.reason, str(exc), attempt)
            raise ApplicationError(str(exc), type=f"MessageInvalid.{exc.reason}",
                                   non_retryable=True) from exc
        except ProviderUnavailable as exc:
            self._update(message, "retrying", exc.reason, str(exc), attempt)
            log.warning("send_retrying", channel=message.channel, reason=exc.reason,
                        attempt=attempt, workflow_id=message.workflow_id)
            raise ApplicationError(str(exc), type=f"ProviderUnavailable.{exc.reason}") from exc
        message.provider_message_id = accepted.provider_message_id
        self._update(message, "accepted", None, "provider accepted the message", attempt)
        log.info("message_accepted", channel=message.channel, workflow_id=message.workflow_id,
                 step_id=message.step_id)
        return _result(message)

    def _update(
        self, message: Message, status: str, reason: str | None, detail: str, attempt: int
    ) -> None:
        with session_scope(self._engine) as session:
            row = session.exec(
                select(Message).where(Message.idempotency_key == message.idempotency_key)
            ).one()
            row.status, row.reason, row.attempts = status, reason, attempt
            row.provider_message_id = message.provider_message_id
            _note(row, status, detail)
            session.add(row)
        message.status, message.reason = status, reason


def _note(message: Message, status: str, detail: str) -> None:
    message.history = [*message.history, {"at": utcnow().isoformat(), "status": status,
                                          "detail": detail}]
    message.updated_at = utcnow()


def _reason(exc: Exception) -> str:
    if isinstance(exc, MessageInvalid):
        return exc.reason
    if isinstance(exc, ContactInvalid):
        return "invalid_recipient"
    return "template_error"


def _result(message: Message) -> StepResult:
    data: dict[str, Any] = {
        "message_id": message.id,
        "channel": message.channel,
        "status": message.status,
        "provider_message_id": message.provider_message_id,
    }
    if message.status in ("cancelled",):
        raise ApplicationError(
            f"message cancelled: {message.reason}",
            {"reason": message.reason},
            type=f"MessageInvalid.{message.reason}",
            non_retryable=True,
        )
    return StepResult(outcome=message.status, detail=message.reason or "", data=data)

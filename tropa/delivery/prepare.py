"""The prepare phase: policy gate, contact, rendering, the message log row.

Runs once per message (the row is unique by key); a repeat returns the row's state, so
a retried activity or a replayed step never renders, counts or logs a message twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from tropa.activities.customer_context import customer_view, customer_zone, load_customer
from tropa.channels.base import ChannelAdapter, OutgoingMessage
from tropa.channels.catalog import CHANNELS, RECEIPT_CHANNELS
from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.delivery import limits
from tropa.delivery.callback import callback_url
from tropa.delivery.models import Prepared
from tropa.delivery.store import Delivery
from tropa.dsl.expressions import ExpressionError, render
from tropa.dsl.plan import StepCall
from tropa.errors import MessageInvalid
from tropa.loyalty.template_view import with_loyalty
from tropa.policy.caps import cap_reached, lock_customer
from tropa.policy.consent import consent_problem, unverified_problem
from tropa.policy.quiet_hours import quiet_until
from tropa.policy.unsubscribe import list_unsubscribe
from tropa.settings import Settings
from tropa.store.models import Customer, Message

WHATSAPP_WINDOW = timedelta(hours=24)


def note(message: Message, status: str, detail: str, at: datetime) -> None:
    """Append a line to the message's history (what a marketer sees in the log)."""
    message.history = [*message.history, {"at": at.isoformat(), "status": status,
                                          "detail": detail}]
    message.updated_at = at


class Preparer:
    """Decides whether, when and what to send for one step on one channel."""

    def __init__(self, adapters: dict[str, ChannelAdapter], settings: Settings) -> None:
        self._adapters = adapters
        self._settings = settings

    def prepare(self, session: Session, call: StepCall, channel: str, key: str,
                now: datetime) -> tuple[Prepared, Message | None]:
        """The row's state if it exists; otherwise gate, render and log a new row."""
        existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
        if existing is not None:
            return self._prepared(existing, channel), existing
        customer = load_customer(session, call.run.customer_id)
        category = str(call.params.get("category") or call.run.category)
        message = Message(idempotency_key=key, journey=call.run.journey,
                          workflow_id=call.run.workflow_id, step_id=call.step_id,
                          customer_id=customer.id, channel=channel, category=category,
                          created_at=now, updated_at=now)
        problem = self._consent(customer, channel, category)
        if problem is None:
            wait = self._quiet(call, customer, category, now)
            if wait is not None:
                return Prepared(status="quiet", reason="quiet_hours", wait_until=wait,
                                detail=f"quiet hours until {wait.isoformat()}"), None
            lock_customer(session, customer.id)
            rule = cap_reached(session, customer_id=customer.id, channel=channel,
                               category=category, now=now, rules=self._settings.policy.caps)
            if rule is not None:
                problem = ("suppressed", "frequency_cap",
                           f"frequency cap: at most {rule.max} {category} messages per "
                           f"{rule.window_seconds}s on {rule.channel}")
        options: dict[str, Any] = {}
        if problem is None:
            try:
                options = self._render(call, customer, message, channel, now)
            except (ContactInvalid, MessageInvalid, ExpressionError) as exc:
                problem = ("cancelled", _reason(exc), str(exc))
        if problem is None:
            message.status = "queued"
            note(message, "queued", "passed consent, quiet hours and caps", now)
            session.add(Delivery(provider_key=key, message_key=key, options=options,
                                 created_at=now, updated_at=now))
        else:
            message.status, message.reason = problem[0], problem[1]
            note(message, problem[0], problem[2], now)
            _keep_preview(message)
        session.add(message)
        session.flush()
        return self._prepared(message, channel), message

    def _consent(self, customer: Customer, channel: str, category: str
                 ) -> tuple[str, str, str] | None:
        detail = consent_problem(customer, channel, category)
        if detail is not None:
            return ("suppressed", "no_consent", detail)
        detail = unverified_problem(customer, channel, self._settings.policy.send_to_unverified)
        if detail is not None:
            return ("suppressed", "unverified_contact", detail)
        return None

    def _quiet(self, call: StepCall, customer: Customer, category: str, now: datetime
               ) -> datetime | None:
        window = call.params.get("quiet_hours")
        if window:
            start, end = str(window["from"]), str(window["to"])
        elif category == "marketing":
            start, end = self._settings.policy.quiet_from, self._settings.policy.quiet_to
        else:
            return None  # service messages (codes, payment links) go at any hour
        return quiet_until(now, customer_zone(customer.time_zone), start, end)

    def _render(self, call: StepCall, customer: Customer, message: Message, channel: str,
                now: datetime) -> dict[str, Any]:
        message.recipient = self._recipient(customer, channel)
        limits.check_recipient(message.recipient)
        context = {**call.context, "customer": self._customer(customer, now)}
        message.text = render(str(call.params.get("text") or ""), context)
        if call.params.get("subject"):
            message.subject = render(str(call.params["subject"]), context)
        if call.params.get("html"):
            message.html = render(str(call.params["html"]), context)
        limits.check_rendered(channel, text=message.text, subject=message.subject,
                              html=message.html)
        options: dict[str, Any] = {}
        if channel == "whatsapp":
            options = self._whatsapp(call, customer, context, now)
        elif channel == "voice" and call.params.get("connect_to"):
            # The robot reads the text, then offers to put the customer through to this number.
            options = {"connect_to": str(call.params["connect_to"])}
        self._adapters[channel].validate(self.outgoing(message, options))
        return options

    def _customer(self, customer: Customer, now: datetime) -> dict[str, Any]:
        # `customer.loyalty` and `customer.card_link` are read only if the template uses them.
        session = object_session(customer)
        bind = session.get_bind() if session is not None else None
        if not isinstance(bind, sa.Engine):
            return customer_view(customer)
        return with_loyalty(customer_view(customer), bind, self._settings.loyalty, now)

    def _whatsapp(self, call: StepCall, customer: Customer, context: dict[str, Any],
                  now: datetime) -> dict[str, Any]:
        window_open = _within(customer.attributes.get("whatsapp_last_inbound_at"), now,
                              WHATSAPP_WINDOW)
        params = [render(str(p), context) for p in call.params.get("template_params") or []]
        limits.check_template_params(params)
        return {"template": call.params.get("template"),
                "params": params,
                "language": call.params.get("language") or customer.locale,
                "window_open": window_open}

    def _recipient(self, customer: Customer, channel: str) -> str:
        contact = CHANNELS[channel]
        if contact == "phone":
            if not customer.phone:
                raise ContactInvalid("the customer has no phone number")
            return normalise_phone(customer.phone, self._settings.policy.default_region)
        if contact == "email":
            if not customer.email:
                raise ContactInvalid("the customer has no email address")
            return normalise_email(customer.email)
        name = contact.removeprefix("attr:")
        value = customer.attributes.get(name)
        if not value:
            raise ContactInvalid(f"the customer has no `{name}` attribute for {channel}")
        return str(value)

    def outgoing(self, message: Message, options: dict[str, Any], key: str | None = None
                 ) -> OutgoingMessage:
        """The adapter's view of a logged message (with List-Unsubscribe on marketing mail)."""
        headers: dict[str, str] = {}
        if message.channel == "email" and message.category == "marketing":
            headers = self._unsubscribe(message.customer_id)
        adapter = self._adapters[message.channel]
        receipt_url = None
        if self._wants_receipt(message.channel):
            receipt_url = callback_url(
                self._settings.delivery.receipts_base_url,
                self._settings.delivery.receipts_secret.get_secret_value(),
                getattr(adapter, "provider", "generic"), message.id or 0)
        return OutgoingMessage(
            idempotency_key=key or message.idempotency_key, channel=message.channel,
            category=message.category, recipient=message.recipient, text=message.text,
            subject=message.subject, html=message.html, headers=headers,
            options={**options, "receipt_url": receipt_url})

    def _unsubscribe(self, customer_id: str) -> dict[str, str]:
        p = self._settings.providers
        return list_unsubscribe(p.unsubscribe_secret.get_secret_value(), p.unsubscribe_url,
                                p.unsubscribe_mailto, customer_id, "email")

    def _wants_receipt(self, channel: str) -> bool:
        return bool(self._settings.delivery.receipts_base_url) and channel in RECEIPT_CHANNELS

    def _prepared(self, message: Message, channel: str) -> Prepared:
        d = self._settings.delivery
        return Prepared(
            status=message.status, reason=message.reason or "",
            detail=(message.history[-1]["detail"] if message.history else ""),
            message_id=message.id, retry_initial_seconds=d.retry_initial_seconds,
            retry_max_interval_seconds=d.retry_max_interval_seconds,
            deliver_timeout_seconds=d.deliver_timeout_seconds,
            wants_receipt=self._wants_receipt(channel),
            receipt_timeout_seconds=d.receipt_timeout_seconds,
            redeliver_after_seconds=d.redeliver_after_seconds, max_rounds=d.max_rounds)


def _keep_preview(message: Message) -> None:
    """A message that is not sent keeps only a bounded preview of what was rendered: an
    oversize text is a content error, not something to store (or to fail storing)."""
    message.text = limits.preview(message.text, limits.STORED_PREVIEW) or ""
    message.html = limits.preview(message.html, limits.STORED_PREVIEW)
    message.subject = limits.preview(message.subject, limits.SUBJECT_MAX)
    message.recipient = limits.preview(message.recipient, limits.RECIPIENT_MAX) or ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, MessageInvalid):
        return exc.reason
    if isinstance(exc, ContactInvalid):
        return "invalid_recipient"
    return "template_error"


def _within(value: Any, now: datetime, window: timedelta) -> bool:
    """Whether a stored ISO timestamp lies within `window` before `now`; a missing,
    unreadable or zone-less value counts as outside (the safe answer: a template is used)."""
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return False
    if moment is None or moment.tzinfo is None:
        return False
    return now - moment < window

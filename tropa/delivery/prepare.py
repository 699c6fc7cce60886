"""The prepare phase: policy gate, contact, rendering, the message log row.

Runs once per message (the row is unique by key); a repeat returns the row's state, so
a retried activity or a replayed step never renders, counts or logs a message twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from tropa.activities.customer_context import customer_view, customer_zone, load_customer
from tropa.channels.base import ChannelAdapter, OutgoingMessage
from tropa.channels.catalog import CHANNELS, RECEIPT_CHANNELS
from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.customers.view import segments_of
from tropa.delivery import limits
from tropa.delivery import models as m
from tropa.delivery.callback import callback_url
from tropa.delivery.models import Prepared
from tropa.delivery.store import Delivery
from tropa.dsl.expressions import ExpressionError, render
from tropa.dsl.plan import StepCall
from tropa.errors import MessageInvalid
from tropa.loyalty.template_view import with_loyalty
from tropa.policy.caps import (
    cap_reached,
    caps_reached,
    journey_cap_reached,
    lock_customer,
    lock_customers,
)
from tropa.policy.consent import consent_problem, unverified_problem
from tropa.policy.quiet_hours import QuietSpan, quiet_until_all
from tropa.policy.unsubscribe import list_unsubscribe
from tropa.settings import CapRule, Settings
from tropa.store.models import Customer, Message

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(slots=True)
class Draft:
    """A message log row as a plain object (one about to be inserted by `prepare_many`, or
    one read for delivery): building a table model per row (pydantic and ORM state) was a
    large part of a broadcast page's cost."""

    idempotency_key: str
    journey: str
    workflow_id: str
    step_id: str
    customer_id: str
    channel: str
    category: str
    created_at: datetime
    updated_at: datetime
    recipient: str = ""
    subject: str | None = None
    text: str = ""
    html: str | None = None
    status: str = "pending"
    reason: str | None = None
    provider_message_id: str | None = None
    provider: str | None = None
    attempts: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None

    def row(self) -> dict[str, Any]:
        """The column values for a Core insert (the id left to the database)."""
        return {name: getattr(self, name) for name in _MESSAGE_COLUMNS}


def note(message: Message | Draft, status: str, detail: str, at: datetime) -> None:
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
            return self.prepared(existing, channel), existing
        customer = load_customer(session, call.run.customer_id)
        category = str(call.params.get("category") or call.run.category)
        message = Message(idempotency_key=key, journey=call.run.journey,
                          workflow_id=call.run.workflow_id, step_id=call.step_id,
                          customer_id=customer.id, channel=channel, category=category,
                          created_at=now, updated_at=now)
        problem = self.consent(customer, channel, category)
        if problem is None:
            wait = self.quiet(call, customer, category, now)
            if wait is not None:
                return Prepared(status="quiet", reason="quiet_hours", wait_until=wait,
                                detail=f"quiet hours until {wait.isoformat()}"), None
            lock_customer(session, customer.id)
            rule = cap_reached(session, customer_id=customer.id, channel=channel,
                               category=category, now=now, rules=self._settings.policy.caps)
            cap = call.run.frequency_cap
            if rule is not None:
                problem = ("suppressed", "frequency_cap",
                           f"frequency cap: at most {rule.max} {category} messages per "
                           f"{rule.window_seconds}s on {rule.channel}")
            elif cap is not None and journey_cap_reached(
                    session, customer_id=customer.id, journey=call.run.journey, now=now,
                    max_messages=cap.max, window_seconds=cap.window_seconds):
                problem = ("suppressed", "frequency_cap",
                           f"journey frequency cap: at most {cap.max} messages of "
                           f"{call.run.journey} per {cap.per}")
        self._settle(session, call, customer, message, channel, now, problem)
        session.add(message)
        session.flush()
        return self.prepared(message, channel), message

    def prepare_many(self, session: Session, calls: list[tuple[StepCall, Customer]],
                     channel: str, now: datetime) -> list[tuple[Prepared, str]]:
        """`prepare` for many messages on one channel in one transaction, with set-based
        reads and writes: one query for the rows that exist, one lock and one count per
        cap rule for all the customers, one insert of the new rows. Each answer comes with
        its message key. A key already in the log or seen before in the batch (two ids
        merged into one customer) is answered "duplicate": the caller's own records say
        whether it handled that message, and nobody is counted or delivered to twice."""
        keys = [m.message_key(call, channel) for call, _ in calls]
        existing = set(session.execute(sa.select(_MESSAGES.c.idempotency_key).where(
            _MESSAGES.c.idempotency_key.in_(keys))).scalars())
        answers: dict[int, Prepared] = {}
        gated: list[tuple[int, Draft, StepCall, Customer, tuple[str, str, str] | None]] = []
        seen: set[str] = set()
        for i, ((call, customer), key) in enumerate(zip(calls, keys, strict=True)):
            if key in seen or key in existing:
                answers[i] = Prepared(status="duplicate", reason="merged_customer")
                continue
            seen.add(key)
            if call.run.frequency_cap is not None:
                # A journey's own cap counts per journey: the one-at-a-time path has it.
                answers[i] = self.prepare(session, call, channel, key, now)[0]
                continue
            category = str(call.params.get("category") or call.run.category)
            problem = self.consent(customer, channel, category)
            if problem is None:
                wait = self.quiet(call, customer, category, now)
                if wait is not None:
                    answers[i] = Prepared(status="quiet", reason="quiet_hours", wait_until=wait,
                                          detail=f"quiet hours until {wait.isoformat()}")
                    continue
            message = Draft(idempotency_key=key, journey=call.run.journey,
                            workflow_id=call.run.workflow_id, step_id=call.step_id,
                            customer_id=customer.id, channel=channel, category=category,
                            created_at=now, updated_at=now)
            gated.append((i, message, call, customer, problem))
        capped = self._caps(session, [(g[1], g[4]) for g in gated], channel, now)
        segments = segments_of(session, {g[3].id for g in gated if g[4] is None})
        deliveries: list[dict[str, Any]] = []
        for i, message, call, customer, problem in gated:
            rule = capped.get((message.customer_id, message.category))
            if problem is None and rule is not None:
                problem = ("suppressed", "frequency_cap",
                           f"frequency cap: at most {rule.max} {message.category} messages "
                           f"per {rule.window_seconds}s on {rule.channel}")
            deliveries += self._settle(None, call, customer, message, channel, now, problem,
                                       segments)
            answers[i] = self.prepared(message, channel)
        # Plain multi-row inserts (the driver's executemany): no ORM bookkeeping and no ids
        # read back, which a page does not need (`message_id` is None in its answers).
        if gated:
            session.execute(sa.insert(_MESSAGES), [g[1].row() for g in gated])
        if deliveries:
            session.execute(sa.insert(_DELIVERIES), deliveries)
        return [(answers[i], key) for i, key in enumerate(keys)]

    def _caps(self, session: Session, gated: list[tuple[Draft, tuple[str, str, str] | None]],
              channel: str, now: datetime) -> dict[tuple[str, str], CapRule]:
        """The cap rule each (customer, category) of the batch would break."""
        by_category: dict[str, list[str]] = {}
        for message, problem in gated:
            if problem is None:
                by_category.setdefault(message.category, []).append(message.customer_id)
        lock_customers(session, sorted({c for ids in by_category.values() for c in ids}))
        found: dict[tuple[str, str], CapRule] = {}
        for category, ids in by_category.items():
            for customer_id, rule in caps_reached(
                    session, customer_ids=ids, channel=channel, category=category, now=now,
                    rules=self._settings.policy.caps).items():
                found[(customer_id, category)] = rule
        return found

    def _settle(self, session: Session | None, call: StepCall, customer: Customer,
                message: Message | Draft, channel: str, now: datetime,
                problem: tuple[str, str, str] | None,
                segments: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Render a message that passed the gate (queued, with its delivery row, added to
        `session` if given, returned as the row's column values otherwise), or log why it
        does not go."""
        options: dict[str, Any] = {}
        if problem is None:
            try:
                options = self.render(call, customer, message, channel, now, segments)
            except (ContactInvalid, MessageInvalid, ExpressionError) as exc:
                problem = ("cancelled", _reason(exc), str(exc))
        if problem is None:
            message.status = "queued"
            note(message, "queued", "passed consent, quiet hours and caps", now)
            if session is None:
                # Delivery's defaults, written out: no model built per row.
                return [{"provider_key": message.idempotency_key,
                         "message_key": message.idempotency_key, "round": 1, "provider": "",
                         "provider_message_id": None, "status": "sending", "reason": None,
                         "options": options, "created_at": now, "updated_at": now}]
            session.add(Delivery(provider_key=message.idempotency_key,
                                 message_key=message.idempotency_key, options=options,
                                 created_at=now, updated_at=now))
            return []
        message.status, message.reason = problem[0], problem[1]
        note(message, problem[0], problem[2], now)
        _keep_preview(message)
        return []

    def consent(self, customer: Customer, channel: str, category: str
                ) -> tuple[str, str, str] | None:
        """(status, reason, detail) when consent or an unverified contact forbids it."""
        detail = consent_problem(customer, channel, category)
        if detail is not None:
            return ("suppressed", "no_consent", detail)
        detail = unverified_problem(customer, channel, self._settings.policy.send_to_unverified)
        if detail is not None:
            return ("suppressed", "unverified_contact", detail)
        return None

    def quiet(self, call: StepCall, customer: Customer, category: str, now: datetime
              ) -> datetime | None:
        """When the quiet hours that hold at `now` end, or None when none hold."""
        zone = customer_zone(customer.time_zone)
        windows: list[QuietSpan] = []
        window = call.params.get("quiet_hours")
        if window:
            windows.append((zone, str(window["from"]), str(window["to"])))
        elif category == "marketing":
            windows.append((zone, self._settings.policy.quiet_from,
                            self._settings.policy.quiet_to))
        # else: service messages (codes, payment links) go at any hour, unless the journey
        # itself says otherwise below.
        journey = call.run.quiet_hours
        if journey is not None:
            windows.append((zone if journey.timezone == "customer" else
                            ZoneInfo(journey.timezone), journey.start, journey.end))
        return quiet_until_all(now, windows)

    def render(self, call: StepCall, customer: Customer, message: Message | Draft,
               channel: str, now: datetime, segments: Mapping[str, str] | None = None
               ) -> dict[str, Any]:
        """Fill the message's recipient and parts; the channel options to deliver with."""
        message.recipient = self._recipient(customer, channel)
        limits.check_recipient(message.recipient)
        context = {**call.context, "customer": self._customer(customer, now, segments)}
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

    def _customer(self, customer: Customer, now: datetime,
                  segments: Mapping[str, str] | None = None) -> dict[str, Any]:
        # `customer.loyalty` and `customer.card_link` are read only if the template uses them.
        session = object_session(customer)
        bind = session.get_bind() if session is not None else None
        if not isinstance(bind, sa.Engine):
            return customer_view(customer, segments)
        return with_loyalty(customer_view(customer, segments), bind, self._settings.loyalty,
                            now)

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

    def outgoing(self, message: Message | Draft, options: dict[str, Any], key: str | None = None
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

    def prepared(self, message: Message | Draft, channel: str) -> Prepared:
        """A logged message's state as the prepare phase reports it."""
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


_MESSAGES: Any = Message.__table__  # type: ignore[attr-defined]
_DELIVERIES: Any = Delivery.__table__  # type: ignore[attr-defined]
_MESSAGE_COLUMNS = tuple(c.name for c in _MESSAGES.columns if c.name != "id")


def _keep_preview(message: Message | Draft) -> None:
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

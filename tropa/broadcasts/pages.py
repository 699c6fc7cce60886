"""A page of a broadcast through the message path: the policy gate (consent, quiet hours,
frequency caps), rendering and the message log, as a journey's send step has them.

A page is one transaction with set-based reads and writes (the recipients, their
customers, the rows already logged, one lock and one count per cap rule for the whole
page, one insert of the messages): every message row commits with its recipient's state,
so a retried page finds the recipient handled and prepares nothing twice; the message key
(broadcast + customer + channel) is unique in the log besides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from tropa.broadcasts.models import Counts, PageOut
from tropa.channels.base import ChannelAdapter
from tropa.customers import view
from tropa.customers.identifiers import aliases_of
from tropa.delivery import models as m
from tropa.delivery.prepare import Preparer
from tropa.dsl.plan import RunRef, StepCall
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast, BroadcastRecipient
from tropa.store.db import custom_plans, session_scope
from tropa.store.models import Customer

STEP_ID = "send"


def journey_of(broadcast_id: str) -> str:
    """The `journey` a broadcast's messages carry in the log (and are counted by)."""
    return f"broadcast/{broadcast_id}"


def recipient_key(broadcast_id: str, customer_id: str) -> str:
    """The per-recipient idempotency key; the message log key adds the channel."""
    return f"broadcast/{broadcast_id}/{customer_id}"


class PagePreparer:
    """Prepares due recipients of a broadcast, a page at a time."""

    def __init__(self, engine: sa.Engine, adapters: dict[str, ChannelAdapter],
                 settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._preparer = Preparer(adapters, settings)

    def prepare_page(self, broadcast_id: str, now: datetime, limit: int) -> PageOut:
        """Gate, render and log up to `limit` recipients due at `now`."""
        with session_scope(self._engine) as session:
            custom_plans(session)
            broadcast = session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise LookupError(f"broadcast {broadcast_id} does not exist")
            params, channel = dict(broadcast.send), broadcast.channel
            # The recipients' ids only, and set-based updates below: no model per row.
            due: list[str] = list(session.execute(
                sa.select(_RECIPIENTS.c.customer_id).where(
                    _RECIPIENTS.c.broadcast_id == broadcast_id,
                    _RECIPIENTS.c.state == "pending", _RECIPIENTS.c.send_at <= now)
                .order_by(_RECIPIENTS.c.send_at, _RECIPIENTS.c.customer_id)
                .limit(limit)).scalars())
            context = {"broadcast": {"id": broadcast_id, "name": broadcast.name},
                       "journey": {"name": journey_of(broadcast_id)}, "event": {"data": {}},
                       "steps": {}}
            page = PageOut(handled=len(due))
            customers = _customers(session, due)
            calls: list[tuple[StepCall, Customer]] = []
            asked: list[str] = []
            skipped: list[dict[str, Any]] = []
            waiting: list[dict[str, Any]] = []
            done: list[str] = []
            for customer_id in due:
                reason = _unreachable(customers.get(customer_id))
                if reason is not None:
                    skipped.append({"b_customer": customer_id, "b_reason": reason})
                    _count(page, ("skipped", reason, None))
                    continue
                calls.append((_call(broadcast_id, customers[customer_id], channel,
                                    params, context, now), customers[customer_id]))
                asked.append(customer_id)
            answers = self._preparer.prepare_many(session, calls, channel, now)
            for customer_id, (prepared, key) in zip(asked, answers, strict=True):
                if prepared.status == "duplicate":
                    # Two recipient ids merged into one person: that person's one message is
                    # the other id's; this one is skipped, so the progress still adds up.
                    reason = prepared.reason or "merged_customer"
                    skipped.append({"b_customer": customer_id, "b_reason": reason})
                    _count(page, ("skipped", reason, None))
                    continue
                if prepared.status == "quiet" and prepared.wait_until is not None:
                    # Quiet hours in the customer's zone: the recipient waits for the window.
                    waiting.append({"b_customer": customer_id, "b_send_at": prepared.wait_until})
                    continue
                done.append(customer_id)
                _count(page, (prepared.status, prepared.reason,
                              key if prepared.status == "queued" else None))
            _record(session, broadcast_id, done, skipped, waiting)
        page.next_due = self._next_due(broadcast_id)
        return page

    def _next_due(self, broadcast_id: str) -> datetime | None:
        with session_scope(self._engine) as session:
            custom_plans(session)
            found: datetime | None = session.exec(
                select(func.min(BroadcastRecipient.send_at)).where(
                    BroadcastRecipient.broadcast_id == broadcast_id,
                    BroadcastRecipient.state == "pending")).one()
        return found

    def deliver_queue(self, task_queue: str, channel: str) -> tuple[str, int]:
        """Where and in what batch size a broadcast's messages on `channel` are delivered."""
        queue = (f"{task_queue}-{channel}" if self._settings.delivery.channel_queues
                 else task_queue)
        rate = self._settings.delivery.rates.get(channel)
        return queue, 1 if rate and rate > 0 else self._settings.broadcasts.deliver_batch


_RECIPIENTS: Any = BroadcastRecipient.__table__  # type: ignore[attr-defined]


def _record(session: Session, broadcast_id: str, done: list[str],
            skipped: list[dict[str, Any]], waiting: list[dict[str, Any]]) -> None:
    """Write the page's recipients' new states, a statement per kind of change."""
    c = _RECIPIENTS.c
    if done:
        session.execute(sa.update(_RECIPIENTS).where(
            c.broadcast_id == broadcast_id, c.customer_id.in_(done)).values(state="prepared"))
    one = sa.and_(c.broadcast_id == broadcast_id, c.customer_id == sa.bindparam("b_customer"))
    if skipped:
        session.execute(sa.update(_RECIPIENTS).where(one).values(
            state="skipped", reason=sa.bindparam("b_reason")), skipped)
    if waiting:
        session.execute(sa.update(_RECIPIENTS).where(one).values(
            send_at=sa.bindparam("b_send_at", type_=c.send_at.type)), waiting)


def _customers(session: Session, ids: list[str]) -> dict[str, Customer]:
    """The page's customers by recipient id, in two queries; a merged id maps to the
    survivor (two ids merged into one person share one key, so that person gets one
    message)."""
    found = {c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(ids)))}
    merged = aliases_of(session, set(ids) - set(found))
    if merged:
        survivors = {c.id: c for c in session.exec(select(Customer).where(
            col(Customer.id).in_(set(merged.values()))))}
        found.update({alias: survivors[s] for alias, s in merged.items() if s in survivors})
    return found


def _unreachable(customer: Customer | None) -> str | None:
    """Why a recipient cannot be reached at all, or None."""
    if customer is None:
        return "customer_not_found"
    try:
        view.customer_zone(customer.time_zone)
    except view.BadTimeZone:
        return "bad_time_zone"
    return None


def _call(broadcast_id: str, customer: Customer, channel: str, params: dict[str, Any],
          context: dict[str, Any], now: datetime) -> StepCall:
    """The send step a journey would run for this recipient, under the broadcast's key."""
    key = recipient_key(broadcast_id, customer.id)
    category = str(params.get("category") or "marketing")
    return StepCall(
        run=RunRef(workflow_id=key, run_id="", journey=journey_of(broadcast_id),
                   version="1", customer_id=customer.id,
                   category="service" if category == "service" else "marketing"),
        step_id=STEP_ID, step_type=m.PREPARE,
        params={**params, m.CHANNEL: channel, m.NOW: now.isoformat()},
        context=context, idempotency_key=key)


def _count(page: PageOut, outcome: tuple[str, str, str | None]) -> None:
    status, reason, key = outcome
    counts: Counts = page.counts
    if key is not None:
        page.keys.append(key)
        counts.queued += 1
    elif status == "suppressed":
        counts.suppressed[reason] = counts.suppressed.get(reason, 0) + 1
    elif status in ("cancelled", "failed"):
        counts.failed += 1
    elif status in ("skipped", "duplicate"):
        counts.skipped += 1

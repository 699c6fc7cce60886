"""A page of a broadcast through the message path: the policy gate (consent, quiet hours,
frequency caps), rendering and the message log, exactly as a journey's send step does.

Each recipient is one transaction: its message row and its recipient state commit
together, so a retried page finds the recipient handled and prepares nothing twice; the
message key (broadcast + customer + channel) is unique in the log besides.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from tropa.broadcasts.models import Counts, PageOut
from tropa.channels.base import ChannelAdapter
from tropa.customers import view
from tropa.customers.identifiers import CustomerNotFound
from tropa.delivery import models as m
from tropa.delivery.prepare import Preparer
from tropa.dsl.plan import RunRef, StepCall
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast, BroadcastRecipient
from tropa.store.db import session_scope

STEP_ID = "send"
_CHUNK = 25


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
        # SQLite takes one writer at a time: threads would only queue for its lock.
        self._threads = 1 if engine.dialect.name == "sqlite" else 4

    def prepare_page(self, broadcast_id: str, now: datetime, limit: int) -> PageOut:
        """Gate, render and log up to `limit` recipients due at `now`."""
        with session_scope(self._engine) as session:
            broadcast = session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise LookupError(f"broadcast {broadcast_id} does not exist")
            params, channel = dict(broadcast.send), broadcast.channel
            due = list(session.exec(
                select(BroadcastRecipient.customer_id).where(
                    BroadcastRecipient.broadcast_id == broadcast_id,
                    BroadcastRecipient.state == "pending",
                    col(BroadcastRecipient.send_at) <= now)
                .order_by(col(BroadcastRecipient.send_at), col(BroadcastRecipient.customer_id))
                .limit(limit)).all())
        context = {"broadcast": {"id": broadcast_id, "name": broadcast.name},
                   "journey": {"name": journey_of(broadcast_id)}, "event": {"data": {}},
                   "steps": {}}
        page = PageOut(handled=len(due))
        chunks = [due[i:i + _CHUNK] for i in range(0, len(due), _CHUNK)]
        with ThreadPoolExecutor(max_workers=self._threads) as pool:
            for outcomes in pool.map(
                    lambda ids: self._chunk(broadcast_id, ids, channel, params, context, now),
                    chunks):
                for outcome in outcomes:
                    _count(page, outcome)
        page.next_due = self._next_due(broadcast_id)
        return page

    def _chunk(self, broadcast_id: str, customer_ids: list[str], channel: str,
               params: dict[str, Any], context: dict[str, Any], now: datetime
               ) -> list[tuple[str, str, str | None]]:
        # One transaction for a chunk: a round trip per BEGIN and COMMIT per recipient was
        # most of the cost. Each message row commits with its recipient's state all the same.
        with session_scope(self._engine) as session:
            rows = {r.customer_id: r for r in session.exec(select(BroadcastRecipient).where(
                BroadcastRecipient.broadcast_id == broadcast_id,
                col(BroadcastRecipient.customer_id).in_(customer_ids)))}
            return [self._one(session, broadcast_id, rows.get(cid), channel, params, context,
                              now) for cid in customer_ids]

    def _one(self, session: Session, broadcast_id: str, recipient: BroadcastRecipient | None,
             channel: str, params: dict[str, Any], context: dict[str, Any], now: datetime
             ) -> tuple[str, str, str | None]:
        if recipient is None or recipient.state != "pending":
            return ("done", "", None)  # handled by an earlier attempt of this page
        try:
            customer = view.load_or_fail(session, recipient.customer_id)
            view.customer_zone(customer.time_zone)
        except (CustomerNotFound, view.BadTimeZone) as exc:
            recipient.state = "skipped"
            recipient.reason = ("customer_not_found" if isinstance(exc, CustomerNotFound)
                                else "bad_time_zone")
            session.add(recipient)
            return ("skipped", recipient.reason, None)
        # A merged customer is reached under the survivor's id: two recipients merged into
        # one person share one key, so that person gets one message.
        key = recipient_key(broadcast_id, customer.id)
        category = str(params.get("category") or "marketing")
        call = StepCall(
            run=RunRef(workflow_id=key, run_id="", journey=journey_of(broadcast_id),
                       version="1", customer_id=customer.id,
                       category="service" if category == "service" else "marketing"),
            step_id=STEP_ID, step_type=m.PREPARE,
            params={**params, m.CHANNEL: channel, m.NOW: now.isoformat()},
            context=context, idempotency_key=key)
        message_key = m.message_key(call, channel)
        prepared, _ = self._preparer.prepare(session, call, channel, message_key, now)
        if prepared.status == "quiet" and prepared.wait_until is not None:
            # Quiet hours in the customer's zone: the recipient waits for the window.
            recipient.send_at = prepared.wait_until
            session.add(recipient)
            return ("quiet", "", None)
        recipient.state = "prepared"
        session.add(recipient)
        return (prepared.status, prepared.reason,
                message_key if prepared.status == "queued" else None)

    def _next_due(self, broadcast_id: str) -> datetime | None:
        with session_scope(self._engine) as session:
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
    elif status == "skipped":
        counts.skipped += 1

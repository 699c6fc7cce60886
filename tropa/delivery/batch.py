"""The deliver phase for a batch of logged messages: provider calls in parallel, the log
read and written a set at a time.

Each message goes under its own key (the message key, round 1), so a provider that saw the
key before (an earlier attempt that died after the call) answers with the same id. The
answers are committed in groups as they come, so a retried batch repeats at most the calls
of one uncommitted group; a message whose delivery row holds a provider id is not called
again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import col, select

from tropa.channels.base import Accepted, ChannelAdapter, OutgoingMessage
from tropa.clock import utcnow
from tropa.delivery.prepare import Preparer, note
from tropa.delivery.receipts import settle_early
from tropa.delivery.store import Delivery, EarlyReceipt
from tropa.errors import MessageInvalid, ProviderError, ProviderUnavailable
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Message

log = get_logger("send")
_FINAL = ("failed", "cancelled")
_RECEIPT_STATES = ("delivered", "undelivered", "rejected")
_GROUP = 64
"""Answers committed per transaction: what a worker killed mid-batch may call again."""


@dataclass
class Answer:
    """What became of one provider call."""

    key: str
    status: str
    """accepted | retrying | cancelled | failed"""
    reason: str | None = None
    detail: str = ""
    accepted: Accepted | None = None


@dataclass
class BatchResult:
    """Counts of a batch, and the first transient provider error (the batch is retried)."""

    sent: int = 0
    failed: int = 0
    transient: list[ProviderUnavailable] = field(default_factory=list)


class BatchDeliverer:
    """Hands batches of queued messages to their providers."""

    def __init__(self, engine: sa.Engine, adapters: dict[str, ChannelAdapter],
                 settings: Settings) -> None:
        self._engine = engine
        self._adapters = adapters
        self._preparer = Preparer(adapters, settings)
        self._concurrency = settings.broadcasts.deliver_concurrency

    def deliver(self, keys: list[str], attempt: int,
                progress: Callable[[], None] = lambda: None) -> BatchResult:
        """Deliver the messages of `keys` not yet taken by their provider."""
        result = BatchResult()
        todo: list[OutgoingMessage] = []
        with session_scope(self._engine) as session:
            messages = {row.idempotency_key: row for row in session.exec(
                select(Message).where(col(Message.idempotency_key).in_(keys)))}
            taken = {row.provider_key: row for row in session.exec(
                select(Delivery).where(col(Delivery.provider_key).in_(keys)))}
            for key in keys:
                message, delivery = messages.get(key), taken.get(key)
                if message is None or message.status in _FINAL:
                    result.failed += 1
                elif delivery is not None and delivery.provider_message_id:
                    result.sent += 1  # an earlier attempt's call was answered and committed
                else:
                    todo.append(self._preparer.outgoing(
                        message, delivery.options if delivery is not None else {}))
        channels = {m.channel for m in messages.values()}
        with ThreadPoolExecutor(max_workers=max(1, min(self._concurrency, len(todo)))) as pool:
            pending: set[Future[Answer]] = {pool.submit(self._call, o) for o in todo}
            done: list[Answer] = []
            beat = 0.0
            while pending:
                finished, pending = wait(pending, timeout=1, return_when=FIRST_COMPLETED)
                done += [f.result() for f in finished]
                if time.monotonic() - beat >= 1:
                    # A heartbeat waits for the worker's event loop: once a second is enough.
                    progress()
                    beat = time.monotonic()
                if len(done) >= _GROUP or (done and not pending):
                    self._record(done, attempt, result)
                    done = []
        log.info("broadcast_batch_delivered", channels=sorted(channels), sent=result.sent,
                 failed=result.failed, retrying=len(result.transient), attempt=attempt)
        return result

    def _call(self, outgoing: OutgoingMessage) -> Answer:
        key = outgoing.idempotency_key
        try:
            accepted = self._adapters[outgoing.channel].send(outgoing)
        except MessageInvalid as exc:
            return Answer(key, "cancelled", exc.reason, str(exc))
        except ProviderUnavailable as exc:
            return Answer(key, "retrying", exc.reason, str(exc))
        except ProviderError as exc:
            # An answer that cannot be used (a 200 without an id): asking again gets the
            # same answer or sends twice.
            return Answer(key, "failed", exc.reason, str(exc))
        except Exception as exc:
            # Only the errors above are transient; anything else an adapter raises fails
            # the same way every time.
            return Answer(key, "failed", "send_error",
                          f"{type(exc).__name__} while handing the message to the provider")
        return Answer(key, "accepted", None, "provider accepted the message", accepted)

    def _record(self, answers: list[Answer], attempt: int, result: BatchResult) -> None:
        """Write a group of answers in one transaction, then hand over early receipts."""
        now = utcnow()
        by_key = {a.key: a for a in answers}
        with session_scope(self._engine) as session:
            deliveries = {d.provider_key: d for d in session.exec(
                select(Delivery).where(col(Delivery.provider_key).in_(by_key)))}
            for row in session.exec(select(Message).where(
                    col(Message.idempotency_key).in_(by_key))):
                a = by_key[row.idempotency_key]
                accepted = a.accepted
                # A receipt recorded meanwhile is newer news than the accept: keep it.
                if not (a.status == "accepted" and row.status in _RECEIPT_STATES):
                    row.status, row.reason = a.status, a.reason
                row.attempts += 1
                if accepted is not None:
                    row.provider_message_id, row.provider = (accepted.provider_message_id,
                                                             accepted.provider)
                note(row, a.status, f"{a.detail} (attempt {attempt})", now)
                delivery = deliveries.get(a.key)
                if delivery is not None:
                    if not (a.status == "accepted" and delivery.status in _RECEIPT_STATES):
                        delivery.status, delivery.reason = a.status, a.reason
                    delivery.updated_at = now
                    if accepted is not None:
                        delivery.provider_message_id, delivery.provider = (
                            accepted.provider_message_id, accepted.provider)
        accepted_ids = {a.accepted.provider_message_id: a.accepted.provider
                        for a in answers if a.accepted is not None}
        if accepted_ids:
            with session_scope(self._engine) as session:
                early = list(session.exec(select(EarlyReceipt.provider_message_id).where(
                    col(EarlyReceipt.provider_message_id).in_(accepted_ids))))
            for provider_message_id in early:
                settle_early(self._engine, provider_message_id, accepted_ids[provider_message_id])
        for a in answers:
            if a.status == "accepted":
                result.sent += 1
            elif a.status == "retrying":
                result.transient.append(ProviderUnavailable(a.detail, reason=a.reason or ""))
            else:
                result.failed += 1
                log.error("send_failed", reason=a.reason, attempt=attempt)

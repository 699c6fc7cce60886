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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from tropa.channels.base import Accepted, ChannelAdapter, OutgoingMessage
from tropa.clock import utcnow
from tropa.delivery.prepare import Draft, Preparer
from tropa.delivery.receipts import settle_early
from tropa.delivery.store import Delivery, EarlyReceipt
from tropa.errors import MessageInvalid, ProviderError, ProviderUnavailable
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.db import custom_plans, session_scope
from tropa.store.models import Message

log = get_logger("send")
_FINAL = ("failed", "cancelled")
_RECEIPT_STATES = ("delivered", "undelivered", "rejected")
_GROUP = 64
"""Answers committed per transaction: what a worker killed mid-batch may call again."""


def _answer_update(table: Any, *, counts_attempt: bool) -> Any:
    """UPDATE of a message or delivery row by key with one answer's bound values."""
    c = table.c
    key = c.idempotency_key if counts_attempt else c.provider_key
    # The states written into the SQL (they are constants): an IN list of bound values
    # cannot run once per row.
    receipt = sa.or_(*(c.status == sa.literal_column(f"'{state}'") for state in _RECEIPT_STATES))
    kept = sa.and_(sa.bindparam("b_accept", type_=sa.Boolean), receipt)
    values: dict[str, Any] = {
        "status": sa.case((kept, c.status), else_=sa.bindparam("b_status")),
        "reason": sa.case((kept, c.reason), else_=sa.bindparam("b_reason")),
        "provider_message_id": sa.func.coalesce(sa.bindparam("b_id", type_=sa.String),
                                                c.provider_message_id),
        "provider": sa.func.coalesce(sa.bindparam("b_provider", type_=sa.String), c.provider),
        "updated_at": sa.bindparam("b_now", type_=c.updated_at.type)}
    if counts_attempt:
        values["attempts"] = c.attempts + 1
        values["history"] = sa.bindparam("b_history", type_=sa.JSON)
    return sa.update(table).where(key == sa.bindparam("b_key")).values(**values)


_MESSAGES: Any = Message.__table__  # type: ignore[attr-defined]
_DELIVERIES: Any = Delivery.__table__  # type: ignore[attr-defined]
_UPDATE_MESSAGES = _answer_update(_MESSAGES, counts_attempt=True)
_UPDATE_DELIVERIES = _answer_update(_DELIVERIES, counts_attempt=False)


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
        histories: dict[str, list[dict[str, Any]]] = {}
        with session_scope(self._engine) as session:
            custom_plans(session)
            # Plain rows, not models: a batch only reads them.
            messages = {row.idempotency_key: Draft(**row._mapping) for row in session.execute(
                sa.select(_MESSAGES).where(_MESSAGES.c.idempotency_key.in_(keys)))}
            taken = {row.provider_key: row for row in session.execute(
                sa.select(_DELIVERIES.c.provider_key, _DELIVERIES.c.provider_message_id,
                          _DELIVERIES.c.options)
                .where(_DELIVERIES.c.provider_key.in_(keys)))}
            for key in keys:
                message, delivery = messages.get(key), taken.get(key)
                if message is None or message.status in _FINAL:
                    result.failed += 1
                elif delivery is not None and delivery.provider_message_id:
                    result.sent += 1  # an earlier attempt's call was answered and committed
                else:
                    todo.append(self._preparer.outgoing(
                        message, delivery.options if delivery is not None else {}))
                    histories[key] = list(message.history)
        channels = {m.channel for m in messages.values()}
        # Calls report to a queue as they finish: waiting on the set of pending futures
        # instead costs a pass over all of them per answer.
        finished: SimpleQueue[Future[Answer]] = SimpleQueue()
        with ThreadPoolExecutor(max_workers=max(1, min(self._concurrency, len(todo)))) as pool:
            for outgoing in todo:
                pool.submit(self._call, outgoing).add_done_callback(finished.put)
            left = len(todo)
            done: list[Answer] = []
            beat = 0.0
            while left:
                try:
                    done.append(finished.get(timeout=1).result())
                    left -= 1
                except Empty:
                    pass
                if time.monotonic() - beat >= 1:
                    # A heartbeat waits for the worker's event loop: once a second is enough.
                    progress()
                    beat = time.monotonic()
                if len(done) >= _GROUP or (done and not left):
                    self._record(done, histories, attempt, result)
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

    def _record(self, answers: list[Answer], histories: dict[str, list[dict[str, Any]]],
                attempt: int, result: BatchResult) -> None:
        """Write a group of answers in one transaction (one UPDATE statement per table,
        run for every row), then hand over early receipts. A receipt recorded meanwhile
        (by an earlier attempt still running) is newer news than an accept: it stays."""
        now = utcnow()
        rows = []
        for a in answers:
            history = [*histories.get(a.key, []),
                       {"at": now.isoformat(), "status": a.status,
                        "detail": f"{a.detail} (attempt {attempt})"}]
            rows.append({"b_key": a.key, "b_status": a.status, "b_reason": a.reason,
                         "b_accept": a.status == "accepted", "b_history": history,
                         "b_id": a.accepted.provider_message_id if a.accepted else None,
                         "b_provider": a.accepted.provider if a.accepted else None,
                         "b_now": now})
        with session_scope(self._engine) as session:
            custom_plans(session)
            session.execute(_UPDATE_MESSAGES, rows)
            session.execute(_UPDATE_DELIVERIES, rows)
        accepted_ids = {a.accepted.provider_message_id: a.accepted.provider
                        for a in answers if a.accepted is not None}
        if accepted_ids:
            with session_scope(self._engine) as session:
                custom_plans(session)
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

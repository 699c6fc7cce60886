"""The send activity: prepare (gate, render, log) and deliver (one provider call).

Every message row is unique by its idempotency key (run + step + channel), and every
provider call carries the key of its attempt round, so a retried activity never hands a
message to a provider twice once the provider has accepted it; a provider that saw the
key before (a worker killed after the call, before the commit) answers with the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

import sqlalchemy as sa
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from tropa.channels.base import ChannelAdapter
from tropa.clock import utcnow
from tropa.delivery import models as m
from tropa.delivery.prepare import Preparer, note
from tropa.delivery.receipts import settle_early
from tropa.delivery.store import Delivery
from tropa.dsl.plan import StepCall, StepResult
from tropa.errors import MessageInvalid, ProviderError, ProviderUnavailable
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Message

log = get_logger("send")
_RECEIPT_STATES = ("delivered", "undelivered", "rejected")


class SendService:
    """Both phases of a send; `run` picks the phase from the call's step type."""

    def __init__(
        self, engine: sa.Engine, adapters: dict[str, ChannelAdapter], settings: Settings
    ) -> None:
        self._engine = engine
        self._adapters = adapters
        self._settings = settings
        self._preparer = Preparer(adapters, settings)

    def run(self, call: StepCall, *, attempt: int, task_queue: str) -> StepResult:
        """Dispatch a phase; `send` alone is the one-activity form of runs started before
        the interpreter split sends into phases."""
        if call.step_type == m.PREPARE:
            return self.prepare(call, task_queue)
        if call.step_type == m.DELIVER:
            return self.deliver(call, attempt)
        return self._whole(call, attempt, task_queue)

    def prepare(self, call: StepCall, task_queue: str) -> StepResult:
        """Gate and log the message; say whether and where to deliver it."""
        channel = str(call.params.get(m.CHANNEL) or call.params["channel"])
        key = m.message_key(call, channel)
        now = _now(call)
        try:
            with session_scope(self._engine) as session:
                prepared, _ = self._preparer.prepare(session, call, channel, key, now)
        except sa.exc.DataError as exc:
            # A value the store refuses (too long, a character it cannot hold) is refused
            # again on every retry: final at once. The text names no value (personal data).
            log.error("message_not_storable", channel=channel, error=type(exc.orig).__name__,
                      workflow_id=call.run.workflow_id)
            raise ApplicationError(
                "the message cannot be stored: a value does not fit its column",
                type="SendFailed.not_storable", non_retryable=True) from None
        if self._settings.delivery.channel_queues:
            prepared.deliver_queue = f"{task_queue}-{channel}"
        if prepared.status in ("suppressed", "cancelled"):
            log.info("message_not_sent", channel=channel, status=prepared.status,
                     reason=prepared.reason, workflow_id=call.run.workflow_id)
        return StepResult(outcome=prepared.status, detail=prepared.reason,
                          data=prepared.model_dump(mode="json"))

    def deliver(self, call: StepCall, attempt: int) -> StepResult:
        """Hand the message to its provider under the key of this attempt round."""
        key = call.idempotency_key
        round_no = int(call.params.get(m.ROUND, 1))
        provider_key = m.round_key(key, round_no)
        with session_scope(self._engine) as session:
            message = session.exec(select(Message).where(Message.idempotency_key == key)).one()
            delivery = session.get(Delivery, provider_key)
            if delivery is None:
                first = session.get(Delivery, key)
                delivery = Delivery(provider_key=provider_key, message_key=key, round=round_no,
                                    options=dict(first.options) if first else {})
                session.add(delivery)
        if delivery.provider_message_id:
            return self._delivered(delivery.provider_message_id, delivery.provider,
                                   provider_key)
        outgoing = self._preparer.outgoing(message, delivery.options, key=provider_key)
        try:
            accepted = self._adapters[message.channel].send(outgoing)
        except MessageInvalid as exc:
            self._record(key, provider_key, "cancelled", exc.reason, str(exc), attempt)
            raise ApplicationError(str(exc), {"reason": exc.reason},
                                   type=f"MessageInvalid.{exc.reason}",
                                   non_retryable=True) from exc
        except ProviderUnavailable as exc:
            self._record(key, provider_key, "retrying", exc.reason, str(exc), attempt)
            log.warning("send_retrying", channel=message.channel, reason=exc.reason,
                        attempt=attempt, workflow_id=message.workflow_id)
            raise ApplicationError(str(exc), type=f"ProviderUnavailable.{exc.reason}") from exc
        except ProviderError as exc:
            # The provider's answer cannot be used (a 200 without a message id): asking
            # again gets the same answer or sends twice.
            self._final(key, provider_key, exc.reason, str(exc), attempt, message)
        except Exception as exc:
            # Only the errors above are transient; anything else an adapter raises (a header
            # it cannot encode, an answer it cannot read) fails the same way every time.
            self._final(key, provider_key, "send_error",
                        f"{type(exc).__name__} while handing the message to the provider",
                        attempt, message)
        self._record(key, provider_key, "accepted", None, "provider accepted the message",
                     attempt, accepted.provider_message_id, accepted.provider)
        log.info("message_accepted", channel=message.channel, workflow_id=message.workflow_id,
                 step_id=message.step_id, round=round_no, attempt=attempt)
        return self._delivered(accepted.provider_message_id, accepted.provider, provider_key)

    def _delivered(self, provider_message_id: str, provider: str,
                   provider_key: str) -> StepResult:
        # A receipt may have come before this commit (the provider is fast, or the worker
        # that made the call died before committing and the repeat got the same id, for
        # which the provider posts no new receipt): the run gets it here. An earlier
        # attempt of this call (timed out, yet still running) may have taken it already:
        # then the delivery row holds it.
        early = settle_early(self._engine, provider_message_id, provider)
        state, reason = (early.state, early.reason) if early else (None, "")
        if early is None:
            with session_scope(self._engine) as session:
                row = session.get(Delivery, provider_key)
                if row is not None and row.status in _RECEIPT_STATES:
                    state, reason = row.status, row.reason or ""
        return StepResult(outcome="accepted", data=m.Delivered(
            provider_message_id=provider_message_id, provider=provider,
            receipt_state=state, receipt_reason=reason).model_dump())

    def _final(self, key: str, provider_key: str, reason: str, detail: str, attempt: int,
               message: Message) -> NoReturn:
        self._record(key, provider_key, "failed", reason, detail, attempt)
        log.error("send_failed", channel=message.channel, reason=reason, attempt=attempt,
                  workflow_id=message.workflow_id)
        raise ApplicationError(detail, {"reason": reason}, type=f"SendFailed.{reason}",
                               non_retryable=True) from None

    def _record(self, key: str, provider_key: str, status: str, reason: str | None,
                detail: str, attempt: int, provider_message_id: str | None = None,
                provider: str = "") -> None:
        now = utcnow()
        with session_scope(self._engine) as session:
            row = session.exec(select(Message).where(Message.idempotency_key == key)).one()
            # A receipt recorded meanwhile (by an earlier attempt still running) is newer
            # news than this attempt's accept: keep it.
            if not (status == "accepted" and row.status in _RECEIPT_STATES):
                row.status, row.reason = status, reason
            row.attempts += 1
            if provider_message_id:
                row.provider_message_id, row.provider = provider_message_id, provider
            note(row, status, f"{detail} (attempt {attempt})", now)
            session.add(row)
            delivery = session.get(Delivery, provider_key)
            if delivery is not None:
                if not (status == "accepted" and delivery.status in _RECEIPT_STATES):
                    delivery.status, delivery.reason = status, reason
                delivery.updated_at = now
                if provider_message_id:
                    delivery.provider_message_id, delivery.provider = provider_message_id, provider
                session.add(delivery)

    def _whole(self, call: StepCall, attempt: int, task_queue: str) -> StepResult:
        result = self.prepare(call, task_queue)
        prepared = m.Prepared.model_validate(result.data)
        if prepared.status == "cancelled":
            raise ApplicationError(f"message cancelled: {prepared.reason}",
                                   {"reason": prepared.reason},
                                   type=f"MessageInvalid.{prepared.reason}", non_retryable=True)
        if prepared.status != "queued":
            return StepResult(outcome=prepared.status, detail=prepared.reason,
                              data={"message_id": prepared.message_id})
        channel = str(call.params["channel"])
        inner = call.model_copy(update={"idempotency_key": m.message_key(call, channel),
                                        "params": {**call.params, m.ROUND: 1}})
        done = self.deliver(inner, attempt)
        return StepResult(outcome="accepted", data={"message_id": prepared.message_id,
                                                    "channel": channel, **done.data})


def _now(call: StepCall) -> datetime:
    # The workflow's clock: quiet hours and caps follow the run's time, which is also what
    # the time-skipping test server moves.
    raw = call.params.get(m.NOW)
    return datetime.fromisoformat(str(raw)) if raw else utcnow()

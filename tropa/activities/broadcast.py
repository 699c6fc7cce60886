"""Broadcast activities: thin shells around tropa.broadcasts and the send path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.activities.messaging import SendService
from tropa.broadcasts import store
from tropa.broadcasts.models import (
    DeliverIn,
    DeliverOut,
    FinishIn,
    PageIn,
    PageOut,
    SnapshotIn,
    SnapshotOut,
)
from tropa.broadcasts.pages import PagePreparer
from tropa.broadcasts.snapshot import take_snapshot
from tropa.channels.base import ChannelAdapter
from tropa.delivery import models as m
from tropa.dsl.plan import RunRef, StepCall
from tropa.errors import AudienceInvalid, AudienceNotFound
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import session_scope
from tropa.store.models import Message

log = get_logger("broadcast")
_FINAL = ("failed", "cancelled")
_THREADS = 8


class BroadcastActivities:
    """The Broadcast workflow's activities, bound to the database, adapters and settings."""

    def __init__(self, engine: sa.Engine, adapters: dict[str, ChannelAdapter],
                 settings: Settings) -> None:
        self._engine = engine
        self._pages = PagePreparer(engine, adapters, settings)
        self._send = SendService(engine, adapters, settings)

    @activity.defn(name="tropa.broadcast.snapshot")
    def snapshot(self, inp: SnapshotIn) -> SnapshotOut:
        """Write the audience as it is at `now` into the recipient list."""
        try:
            out = take_snapshot(self._engine, inp.broadcast_id, inp.now,
                                progress=lambda n: activity.heartbeat(n))
        except (AudienceInvalid, AudienceNotFound) as exc:
            # The saved audience was deleted or changed into something that does not
            # validate since the broadcast was made: retrying cannot help.
            raise ApplicationError(str(exc), type="AudienceUnusable",
                                   non_retryable=True) from None
        log.info("broadcast_snapshot", broadcast=inp.broadcast_id, recipients=out.recipients,
                 holdout=out.holdout)
        return out

    @activity.defn(name="tropa.broadcast.prepare_page")
    def prepare_page(self, inp: PageIn) -> PageOut:
        """Gate, render and log the next page of due recipients."""
        page = self._pages.prepare_page(inp.broadcast_id, inp.now, inp.limit)
        with session_scope(self._engine) as session:
            channel = store.get(session, inp.broadcast_id).channel
        page.deliver_queue, page.batch_size = self._pages.deliver_queue(
            activity.info().task_queue, channel)
        return page

    @activity.defn(name="tropa.broadcast.deliver")
    def deliver(self, inp: DeliverIn) -> DeliverOut:
        """Hand a batch of logged messages to the provider, each under its own key.

        A message the provider took before (an earlier attempt of this batch) is not sent
        again: its delivery row holds the provider's id. Provider outages are raised after
        the rest of the batch went out, so the retry covers only what is left."""
        attempt = activity.info().attempt
        with session_scope(self._engine) as session:
            finished = set(session.exec(select(Message.idempotency_key).where(
                col(Message.idempotency_key).in_(inp.keys),
                col(Message.status).in_(_FINAL))).all())
        todo = [k for k in inp.keys if k not in finished]
        out = DeliverOut(failed=len(inp.keys) - len(todo))
        transient: list[ApplicationError] = []

        def one(key: str) -> str:
            call = StepCall(run=_ref(inp.broadcast_id), step_id="send", step_type=m.DELIVER,
                            params={m.ROUND: 1}, idempotency_key=key)
            try:
                self._send.deliver(call, attempt)
            except ApplicationError as exc:
                if not exc.non_retryable:
                    transient.append(exc)
                    return "retry"
                return "failed"
            return "sent"

        with ThreadPoolExecutor(max_workers=min(_THREADS, max(len(todo), 1))) as pool:
            for result in pool.map(one, todo):
                activity.heartbeat()  # from this thread: the activity's context lives here
                if result == "sent":
                    out.sent += 1
                elif result == "failed":
                    out.failed += 1
        if transient:
            raise transient[0]
        return out

    @activity.defn(name="tropa.broadcast.finish")
    def finish(self, inp: FinishIn) -> None:
        """Record the end; a cancelled broadcast leaves its pending recipients out."""
        with session_scope(self._engine) as session:
            if inp.status == "cancelled":
                left = store.leave_out_pending(session, inp.broadcast_id)
                log.info("broadcast_cancelled", broadcast=inp.broadcast_id, left_out=left)
            session.execute(sa.update(Broadcast).where(
                col(Broadcast.id) == inp.broadcast_id,
                col(Broadcast.status).in_(("scheduled", "sending", "paused", "cancelled")))
                .values(status=inp.status, finished_at=inp.now, updated_at=inp.now))


def _ref(broadcast_id: str) -> RunRef:
    return RunRef(workflow_id=f"broadcast/{broadcast_id}", run_id="", journey="broadcast",
                  version="1", customer_id="", category="marketing")


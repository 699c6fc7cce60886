"""Broadcast activities: thin shells around tropa.broadcasts and the send path."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col
from temporalio import activity
from temporalio.exceptions import ApplicationError

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
from tropa.delivery.batch import BatchDeliverer
from tropa.dsl.plan import RunRef
from tropa.errors import AudienceInvalid, AudienceNotFound
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import session_scope

log = get_logger("broadcast")
_FINAL = ("failed", "cancelled")
_THREADS = 8


class BroadcastActivities:
    """The Broadcast workflow's activities, bound to the database, adapters and settings."""

    def __init__(self, engine: sa.Engine, adapters: dict[str, ChannelAdapter],
                 settings: Settings) -> None:
        self._engine = engine
        self._pages = PagePreparer(engine, adapters, settings)
        self._deliver = BatchDeliverer(engine, adapters, settings)
        self._heartbeat = settings.broadcasts.deliver_heartbeat_seconds

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
        page.deliver_heartbeat_seconds = self._heartbeat
        return page

    @activity.defn(name="tropa.broadcast.deliver")
    def deliver(self, inp: DeliverIn) -> DeliverOut:
        """Hand a batch of logged messages to the provider, each under its own key.

        A message the provider took before (an earlier attempt of this batch) is not sent
        again: its delivery row holds the provider's id. Provider outages are raised after
        the rest of the batch went out, so the retry covers only what is left."""
        attempt = activity.info().attempt
        # Heartbeats from this thread: the activity's context lives here.
        result = self._deliver.deliver(inp.keys, attempt, progress=activity.heartbeat)
        if result.transient:
            first = result.transient[0]
            log.warning("send_retrying", reason=first.reason, attempt=attempt,
                        left=len(result.transient))
            raise ApplicationError(str(first), type=f"ProviderUnavailable.{first.reason}")
        return DeliverOut(sent=result.sent, failed=result.failed)

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


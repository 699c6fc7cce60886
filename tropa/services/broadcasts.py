"""Broadcast use cases shared by the API and the command line: create and start, pause,
resume, cancel, read with progress."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tropa.audiences import resolve
from tropa.broadcasts import store
from tropa.broadcasts.models import MEMO_PROGRESS, BroadcastInput
from tropa.broadcasts.pages import journey_of
from tropa.clock import utcnow
from tropa.logs import get_logger
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import session_scope
from tropa.workflows import search_attributes as keys

log = get_logger("broadcasts")
WORKFLOW = "Broadcast"
SIGNALS = {"pause": "paused", "resume": "sending", "cancel": "cancelled"}


@dataclass
class NewBroadcast:
    """A validated broadcast request."""

    name: str
    channel: str
    audience: dict[str, Any]
    send: dict[str, Any]
    start: dict[str, Any] = field(default_factory=lambda: {"now": True})
    holdout_percent: float = 0.0


def workflow_id(broadcast_id: str) -> str:
    """The Broadcast workflow's id: readable in the Web UI, one per broadcast."""
    return f"broadcast/{broadcast_id}"


def _new_id(now: datetime) -> str:
    # Ids sort by creation (the list pages by id) and are unguessable enough to be public.
    return f"bc_{now:%Y%m%d%H%M%S}_{secrets.token_hex(4)}"


def _insert(engine: sa.Engine, new: NewBroadcast, now: datetime) -> Broadcast:
    starts_at = (datetime.fromisoformat(str(new.start["at"])) if "at" in new.start else now)
    broadcast_id = _new_id(now)
    row = Broadcast(id=broadcast_id, name=new.name, channel=new.channel,
                    audience=new.audience, send=new.send, start=new.start,
                    starts_at=starts_at, holdout_percent=new.holdout_percent,
                    workflow_id=workflow_id(broadcast_id), created_at=now, updated_at=now)
    with session_scope(engine) as session:
        # An unknown saved audience or a filter that does not validate is refused here,
        # before anything is stored (AudienceNotFound, AudienceInvalid).
        resolve(session, new.audience)
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


async def create(engine: sa.Engine, client: Client, settings: Settings,
                 new: NewBroadcast) -> Broadcast:
    """Store the broadcast and start its workflow."""
    now = utcnow()
    row = await run_in_threadpool(_insert, engine, new, now)
    b = settings.broadcasts
    inp = BroadcastInput(broadcast_id=row.id, snapshot_at=row.starts_at,
                         page_size=b.page_size, history_limit=b.history_limit,
                         page_timeout_seconds=b.page_timeout_seconds)
    try:
        await client.start_workflow(
            WORKFLOW, inp, id=row.workflow_id, task_queue=settings.temporal.task_queue,
            memo={MEMO_PROGRESS: {"state": "scheduled"}},
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(keys.JOURNEY, journey_of(row.id))]),
            static_summary=f"Broadcast `{row.name}` over {row.channel}",
            static_details=f"broadcast id {row.id}; progress is in the memo")
    except Exception:
        await run_in_threadpool(_mark_failed, engine, row.id)
        raise
    log.info("broadcast_created", broadcast=row.id, channel=row.channel)
    return row


def _mark_failed(engine: sa.Engine, broadcast_id: str) -> None:
    with session_scope(engine) as session:
        session.execute(sa.update(Broadcast).where(
            Broadcast.id == broadcast_id).values(status="failed"))  # type: ignore[arg-type]


async def control(engine: sa.Engine, client: Client, broadcast_id: str, action: str) -> None:
    """Pause, resume or cancel: the stored state changes first (a conflict is refused
    before anything is signalled), then the workflow is told."""
    now = utcnow()

    def change() -> str:
        with session_scope(engine) as session:
            store.change_status(session, broadcast_id, SIGNALS[action], now)
            return store.get(session, broadcast_id).workflow_id

    wid = await run_in_threadpool(change)
    await client.get_workflow_handle(wid).signal(action)
    log.info("broadcast_control", broadcast=broadcast_id, action=action)

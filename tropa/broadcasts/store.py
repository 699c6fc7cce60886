"""Broadcast rows: create, read, list, and state changes as atomic updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from tropa.store.broadcast_models import Broadcast, BroadcastRecipient

# Which states each change may start from; anything else is a conflict the caller names.
FROM = {
    "paused": ("scheduled", "sending"),
    "sending": ("paused",),
    "cancelled": ("scheduled", "sending", "paused"),
    "completed": ("sending", "scheduled"),
}


class BroadcastNotFound(LookupError):
    """No broadcast has this id."""


class BroadcastConflict(ValueError):
    """The change does not apply to the broadcast's current state."""


def get(session: Session, broadcast_id: str) -> Broadcast:
    """The broadcast, or BroadcastNotFound naming the id."""
    found = session.get(Broadcast, broadcast_id)
    if found is None:
        raise BroadcastNotFound(f"no broadcast has the id {broadcast_id!r}; list them with "
                                "GET /v1/broadcasts")
    return found


def listing(session: Session, *, status: str | None, after: str | None,
            limit: int) -> Sequence[Broadcast]:
    """Broadcasts by id (ids sort by creation), filtered by status."""
    query = select(Broadcast).order_by(col(Broadcast.id)).limit(limit)
    if status is not None:
        query = query.where(Broadcast.status == status)
    if after is not None:
        query = query.where(col(Broadcast.id) > after)
    return session.exec(query).all()


def change_status(session: Session, broadcast_id: str, status: str, now: datetime) -> None:
    """Move the broadcast to `status` if its current state allows it, in one UPDATE so two
    racing requests cannot both win; BroadcastConflict names the state otherwise."""
    values: dict[str, object] = {"status": status, "updated_at": now}
    if status in ("completed", "cancelled"):
        values["finished_at"] = now
    done = session.execute(sa.update(Broadcast).where(
        col(Broadcast.id) == broadcast_id, col(Broadcast.status).in_(FROM[status]))
        .values(**values))
    if done.rowcount == 0:  # type: ignore[attr-defined]
        current = get(session, broadcast_id)
        raise BroadcastConflict(f"broadcast {broadcast_id} is {current.status}; it cannot "
                                f"become {status} (only from {', '.join(FROM[status])})")


def leave_out_pending(session: Session, broadcast_id: str) -> int:
    """Mark the recipients not yet handled as cancelled; how many there were."""
    done = session.execute(sa.update(BroadcastRecipient).where(
        col(BroadcastRecipient.broadcast_id) == broadcast_id,
        col(BroadcastRecipient.state) == "pending").values(state="cancelled",
                                                          reason="broadcast_cancelled"))
    return int(done.rowcount)  # type: ignore[attr-defined]

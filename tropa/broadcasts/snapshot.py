"""The snapshot: the audience, as it is at one moment, written down as the recipient list.

Paged by customer id in SQL and committed page by page; a retried snapshot goes on after
the last id written, so it never loads the base into memory nor writes anyone twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select

from tropa.audiences import audience_select, resolve
from tropa.broadcasts.models import SnapshotOut
from tropa.broadcasts.waves import in_holdout, local_send_at
from tropa.store.broadcast_models import Broadcast, BroadcastRecipient
from tropa.store.db import session_scope
from tropa.store.models import Customer

PAGE = 5000
RECIPIENTS: Any = BroadcastRecipient.__table__  # type: ignore[attr-defined]


def take_snapshot(engine: sa.Engine, broadcast_id: str, now: datetime, *, page: int = PAGE,
                  progress: Callable[[int], None] | None = None) -> SnapshotOut:
    """Write the broadcast's recipients (holdout marked, wave times set) and count them."""
    with session_scope(engine) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise LookupError(f"broadcast {broadcast_id} does not exist")
        audience = resolve(session, broadcast.audience)
        start, percent = dict(broadcast.start), broadcast.holdout_percent
        after = session.exec(select(func.max(BroadcastRecipient.customer_id)).where(
            BroadcastRecipient.broadcast_id == broadcast_id)).one()
    customers: Any = Customer.__table__  # type: ignore[attr-defined]
    # The filter's own SELECT over customers, with the zone beside the id and a key bound.
    members = audience_select(audience, now=now).add_columns(customers.c.time_zone)
    local_time = start.get("in_local_time")
    written = 0
    while True:
        query = members.order_by(customers.c.id).limit(page)
        if after is not None:
            query = query.where(customers.c.id > after)
        with engine.begin() as conn:
            rows = conn.execute(query).all()
            if not rows:
                break
            conn.execute(sa.insert(RECIPIENTS), [
                _recipient(broadcast_id, row.customer_id, row.time_zone, percent, local_time, now)
                for row in rows])
        after = rows[-1].customer_id
        written += len(rows)
        if progress is not None:
            progress(written)
    return _record_counts(engine, broadcast_id, now)


def _recipient(broadcast_id: str, customer_id: str, zone: str, percent: float,
               local_time: str | None, now: datetime) -> dict[str, Any]:
    # Waves are the next occurrence of the local time after the snapshot (the workflow's
    # clock, which is also what tests and `tropa simulate` move).
    held = in_holdout(broadcast_id, customer_id, percent)
    send_at = local_send_at(zone, local_time, now) if local_time and not held else now
    return {"broadcast_id": broadcast_id, "customer_id": customer_id,
            "state": "holdout" if held else "pending", "reason": None, "send_at": send_at}


def _record_counts(engine: sa.Engine, broadcast_id: str, now: datetime) -> SnapshotOut:
    with session_scope(engine) as session:
        total = session.exec(select(func.count()).select_from(BroadcastRecipient).where(
            BroadcastRecipient.broadcast_id == broadcast_id)).one()
        held = session.exec(select(func.count()).select_from(BroadcastRecipient).where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            BroadcastRecipient.state == "holdout")).one()
        session.execute(sa.update(Broadcast).where(col(Broadcast.id) == broadcast_id).values(
            recipients=total, holdout=held, snapshot_at=now, updated_at=now))
        # A broadcast paused or cancelled while it waited keeps that state.
        session.execute(sa.update(Broadcast).where(
            col(Broadcast.id) == broadcast_id, col(Broadcast.status) == "scheduled").values(
            status="sending"))
    return SnapshotOut(recipients=total, holdout=held)

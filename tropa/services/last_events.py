"""The newest event of each type per customer (what inactivity triggers count from), and the
runs that date and inactivity occurrences started (which events they may receive)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tropa.dsl.plan import EventIn
from tropa.store.trigger_models import CustomerLastEvent, TriggerClaim

LAST = CustomerLastEvent.__table__  # type: ignore[attr-defined]
CLAIMS = TriggerClaim.__table__  # type: ignore[attr-defined]
# A run started by an occurrence listens for events this long after its start at most.
LISTENING = timedelta(days=366)


def record_last_event(conn: sa.Connection, event: EventIn) -> None:
    """Keep the newest event of its type for the customer (an older one changes nothing)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(LAST).values(customer_id=event.customer_id, event_type=event.type,
                                       last_at=event.occurred_at, event_id=event.event_id)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["customer_id", "event_type"],
        set_={"last_at": stmt.excluded.last_at, "event_id": stmt.excluded.event_id},
        where=stmt.excluded.last_at > LAST.c.last_at))


def occurrence_runs(engine: sa.Engine, journey: str, customer_id: str,
                    now: datetime) -> list[str]:
    """Runs of a date or inactivity journey for this customer that are started and due (a run
    still in its start delay must not be woken early by an event)."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(CLAIMS.c.workflow_id).where(
            CLAIMS.c.journey == journey, CLAIMS.c.customer_id == customer_id,
            CLAIMS.c.started_at.is_not(None), CLAIMS.c.due_at <= now,
            CLAIMS.c.due_at > now - LISTENING)).scalars())

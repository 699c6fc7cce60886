"""Batch intake: claim many events in one statement, route them concurrently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from tropa.clock import utcnow
from tropa.customers.identifiers import aliases_of
from tropa.customers.view import customer_view
from tropa.dsl.plan import EventIn
from tropa.logs import get_logger
from tropa.services.events import CLAIM_TIMEOUT, EventRouter, Routed
from tropa.services.last_events import record_last_event
from tropa.store.db import session_scope
from tropa.store.models import Customer, Event
from tropa.store.segment_models import CustomerSegment

log = get_logger("events")
EVENTS = Event.__table__  # type: ignore[attr-defined]
CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
SEGMENTS = CustomerSegment.__table__  # type: ignore[attr-defined]


@dataclass
class Failed:
    """An event that could not be routed: `retryable` when sending it again may work."""

    reason: str
    retryable: bool


Outcome = Routed | Failed


async def ingest_many(router: EventRouter, events: list[EventIn],
                      concurrency: int = 64) -> list[Outcome]:
    """Store each event once and route the new ones; one outcome per event, in order."""
    claims = await run_in_threadpool(claim_many, router.engine, events)
    outcomes: list[Outcome | None] = [None] * len(events)
    pending: list[tuple[int, EventIn, dict[str, Any]]] = []
    for index, claim in enumerate(claims):
        if isinstance(claim, dict):
            pending.append((index, events[index], claim))
        else:
            outcomes[index] = claim
    gate = asyncio.Semaphore(concurrency)

    async def route(index: int, event: EventIn, view: dict[str, Any]) -> None:
        async with gate:
            try:
                outcomes[index] = await router.route(event, view)
            except Exception as exc:
                log.warning("event_route_failed", event_type=event.type,
                            error=type(exc).__name__)
                outcomes[index] = Failed(f"routing failed ({type(exc).__name__}); send the "
                                         "event again with the same event_id", retryable=True)

    try:
        await asyncio.gather(*(route(*p) for p in pending))
    finally:
        # Even when the request is cancelled: routed events are marked, the rest released.
        done = {events[i].event_id: o for i, _, _ in pending
                if isinstance(o := outcomes[i], Routed)}
        failed = [events[i].event_id for i, _, _ in pending if not isinstance(outcomes[i], Routed)]
        await run_in_threadpool(finish, router.engine, done, failed)
    return [o if o is not None else Failed("not routed", retryable=True) for o in outcomes]


def _views(conn: sa.Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
    # Core rows, not ORM objects: this runs for every event and the view only reads
    # attributes, which a row has by the same names (the RF segment joined in).
    return {row.id: customer_view(cast(Customer, row)) for row in conn.execute(
        sa.select(*CUSTOMERS.c, SEGMENTS.c.segment)
        .select_from(CUSTOMERS.outerjoin(SEGMENTS, SEGMENTS.c.customer_id == CUSTOMERS.c.id))
        .where(CUSTOMERS.c.id.in_(ids)))}


def claim_many(engine: sa.Engine, events: list[EventIn]) -> list[Outcome | dict[str, Any]]:
    """Per event: the customer view when this request routes it, else its outcome (a
    duplicate, or Failed, not retryable, when the customer does not exist)."""
    out: list[Outcome | dict[str, Any]] = [Routed(status="duplicate")] * len(events)
    first: dict[str, int] = {}
    for index, event in enumerate(events):
        first.setdefault(event.event_id, index)
    wanted = {events[i].customer_id for i in first.values()}
    with engine.connect() as conn:
        views = _views(conn, wanted)
    missing = wanted - set(views)
    if missing:
        with session_scope(engine) as session:
            aliases = aliases_of(session, missing)
        if aliases:  # merged ids: their events go to the survivor
            with engine.connect() as conn:
                views.update(_views(conn, set(aliases.values())))
            for event in events:
                event.customer_id = aliases.get(event.customer_id, event.customer_id)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event_id, index in first.items():
        event = events[index]
        if event.customer_id not in views:
            out[index] = Failed(f"customer {event.customer_id!r} does not exist; create it "
                                f"first with PUT /v1/customers/{event.customer_id}",
                                retryable=False)
            continue
        rows.append({"event_id": event_id, "type": event.type, "customer_id": event.customer_id,
                     "occurred_at": event.occurred_at, "received_at": now, "claimed_at": now,
                     "data": event.data, "routed_to": []})
    if not rows:
        return out
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        # ON CONFLICT DO NOTHING settles concurrent requests with the same event_id in the
        # database: exactly one of them gets the row back and routes the event.
        # One statement for any number of rows (executemany), so it is compiled once.
        stmt = insert(EVENTS).on_conflict_do_nothing(index_elements=["event_id"])
        claimed = set(conn.execute(stmt.returning(EVENTS.c.event_id), rows).scalars())
        stored = [r["event_id"] for r in rows if r["event_id"] not in claimed]
        if stored:
            # Stored before: route again only if an earlier attempt failed or died mid-way.
            claimed |= set(conn.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.event_id.in_(stored), EVENTS.c.routed_at.is_(None),
                       sa.or_(EVENTS.c.claimed_at.is_(None),
                              EVENTS.c.claimed_at < now - CLAIM_TIMEOUT))
                .values(claimed_at=now).returning(EVENTS.c.event_id)).scalars())
        # Inactivity triggers count from each customer's newest event of a type; in the
        # claim's transaction, customers in a stable order so concurrent batches never
        # deadlock.
        for index in sorted((first[e] for e in claimed),
                            key=lambda i: (events[i].customer_id, events[i].type)):
            record_last_event(conn, events[index])
    for row in rows:
        if row["event_id"] in claimed:
            out[first[row["event_id"]]] = views[row["customer_id"]]
    return out


def finish(engine: sa.Engine, done: dict[str, Routed], failed: list[str]) -> None:
    """Mark events routed (with their runs), and release the failed ones for a retry."""
    now = utcnow()
    with engine.begin() as conn:
        if done:
            conn.execute(
                sa.update(EVENTS).where(EVENTS.c.event_id == sa.bindparam("eid"))
                .values(routed_at=sa.bindparam("at"), routed_to=sa.bindparam("runs")),
                [{"eid": k, "at": now, "runs": [*r.started, *r.signalled]}
                 for k, r in done.items()])
        if failed:
            conn.execute(sa.update(EVENTS).where(EVENTS.c.event_id.in_(failed))
                         .values(claimed_at=None))

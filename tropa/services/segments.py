"""RF segment use cases: refresh after purchases, the daily time-passing run, full recompute,
configuration preview and change, and the events every move emits.

A move and its events are written in one transaction (the events land in the `events` table
unrouted, as an outbox); the caller then routes them with `EventRouter.ingest`, which takes a
stored, unrouted event and routes it once. Events left unrouted by a crash are picked up by
the next daily run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from tropa.dsl.plan import EventIn
from tropa.segments import compute
from tropa.segments.config import RfConfig, load_default, parse
from tropa.store import bulk
from tropa.store.models import Event
from tropa.store.segment_models import RfConfigVersion, SegmentSnapshot, SweepMark
from tropa.store.types import UtcDateTime

EVENTS = SQLModel.metadata.tables[Event.__tablename__]
CONFIGS = SQLModel.metadata.tables[RfConfigVersion.__tablename__]
SNAPSHOTS = SQLModel.metadata.tables[SegmentSnapshot.__tablename__]
MARKS = SQLModel.metadata.tables[SweepMark.__tablename__]
STATS = sa.table("purchase_stats", sa.column("customer_id", sa.String),
                 sa.column("last_purchase_at", UtcDateTime()))
DAILY = "rf-daily"
CHUNK = 1000


def active_config(conn: sa.Connection) -> RfConfig:
    """The configuration in force: the newest applied one, or the shipped defaults."""
    text = conn.execute(sa.select(CONFIGS.c.source_yaml)
                        .order_by(CONFIGS.c.id.desc()).limit(1)).scalar()
    return parse(str(text), source="rf configuration") if text else load_default()


def move_events(moves: Iterable[compute.Move]) -> list[EventIn]:
    """`segment.exited` and `segment.entered` for each move, with ids that make a repeat a no-op."""
    make = EventIn
    events: list[EventIn] = []
    for move in moves:
        if move.from_segment is not None:
            events.append(make(event_id=f"segment-move-{move.move_id}-exited",
                               type="segment.exited", customer_id=move.customer_id,
                               occurred_at=move.at, data={"segment": move.from_segment,
                                                          "from": move.from_segment,
                                                          "to": move.to_segment}))
        if move.to_segment is not None:
            events.append(make(event_id=f"segment-move-{move.move_id}-entered",
                               type="segment.entered", customer_id=move.customer_id,
                               occurred_at=move.at, data={"segment": move.to_segment,
                                                          "from": move.from_segment,
                                                          "to": move.to_segment}))
    return events


def _store(conn: sa.Connection, moves: Sequence[compute.Move], now: datetime) -> None:
    """Insert the events of these moves, unrouted, built in the database from the moves."""
    by_time: dict[datetime, list[compute.Move]] = {}
    for move in moves:
        by_time.setdefault(move.at, []).append(move)
    for at, group in by_time.items():
        src = bulk.rows(conn, ("move_id", "customer_id", "from_segment", "to_segment"),
                        [(str(m.move_id), m.customer_id, m.from_segment, m.to_segment)
                         for m in group])
        conn.execute(sa.insert(EVENTS).from_select(
            ["event_id", "type", "customer_id", "occurred_at", "received_at", "data",
             "routed_to"],
            sa.union_all(_events(conn, src, "exited", at=at, now=now),
                         _events(conn, src, "entered", at=at, now=now))))


def _events(conn: sa.Connection, src: sa.Subquery, kind: str, *, at: datetime,
            now: datetime) -> sa.Select[Any]:
    # The same event ids and data as `move_events` gives the router.
    segment = src.c.from_segment if kind == "exited" else src.c.to_segment
    return sa.select(
        sa.literal("segment-move-") + src.c.move_id + sa.literal(f"-{kind}"),
        sa.literal(f"segment.{kind}"), src.c.customer_id,
        sa.literal(at, UtcDateTime()), sa.literal(now, UtcDateTime()),
        bulk.json_object(conn, ("segment", segment), ("from", src.c.from_segment),
                         ("to", src.c.to_segment)),
        bulk.json_text(conn, "[]")).where(segment.is_not(None))


def refresh_customers(engine: sa.Engine, customer_ids: Sequence[str], *, now: datetime,
                      cause: str) -> list[EventIn]:
    """Move these customers to the segment their purchases put them in now."""
    with engine.begin() as conn:
        moves = compute.refresh(conn, active_config(conn), customer_ids, now=now, cause=cause)
        _store(conn, moves, now)
        return move_events(moves)


def time_passing(engine: sa.Engine, *, now: datetime) -> tuple[int, list[EventIn]]:
    """The daily run: move customers whose last purchase crossed a recency bound, or whose
    oldest purchase left the window, since the last run. Returns (customers checked, events)."""
    with engine.begin() as conn:
        config = active_config(conn)
        since = conn.execute(sa.select(MARKS.c.done_until)
                             .where(MARKS.c.name == DAILY)).scalar() or now - timedelta(days=1)
        candidates = due(conn, config, since=since, now=now)
    events: list[EventIn] = []
    for start in range(0, len(candidates), CHUNK):
        events += refresh_customers(engine, candidates[start:start + CHUNK], now=now,
                                    cause="time")
    with engine.begin() as conn:
        snapshot(conn, now.date())
        _mark(conn, now)
    return len(candidates), events


def due(conn: sa.Connection, config: RfConfig, *, since: datetime, now: datetime) -> list[str]:
    """Customers the calendar may have moved between `since` and `now` (indexed look-ups)."""
    # Who bought since the last run: their purchase moved them already, unless the process
    # died between the order's commit and the move; refreshing them again is cheap.
    ids: set[str] = set(conn.execute(sa.select(STATS.c.customer_id).where(
        STATS.c.last_purchase_at > since)).scalars())
    for days in config.recency_bounds():
        span = timedelta(days=days)
        ids.update(conn.execute(sa.select(STATS.c.customer_id).where(
            STATS.c.last_purchase_at > since - span,
            STATS.c.last_purchase_at <= now - span)).scalars())
    window = timedelta(days=config.window_days)
    ids.update(conn.execute(sa.select(compute.ORDERS.c.customer_id).where(
        compute.ORDERS.c.counted.is_(True),
        compute.ORDERS.c.placed_at >= since - window,
        compute.ORDERS.c.placed_at < now - window)).scalars())
    return sorted(ids)


def recompute_all(engine: sa.Engine, *, now: datetime, cause: str,
                  page_size: int = 10_000) -> tuple[int, list[EventIn]]:
    """Every customer: one set-based pass finds who moved, then they move in pages of
    `page_size`, each in its own transaction. Returns (moves, events)."""
    with engine.connect() as conn:
        config = active_config(conn)
        changed = compute.changed_everywhere(conn, config, now=now)
    moves = 0
    events: list[EventIn] = []
    for start in range(0, len(changed), page_size):
        with engine.begin() as conn:
            page = compute.settle(conn, config, changed[start:start + page_size], now=now,
                                  cause=cause)
            _store(conn, page, now)
            page_events = move_events(page)
        moves += len(page)
        events += page_events
    return moves, events


def preview_config(engine: sa.Engine, source_yaml: str, *,
                   now: datetime) -> dict[tuple[str | None, str | None], int]:
    """How many customers a new configuration would move, from which segment to which."""
    config = parse(source_yaml, source="rf configuration")
    with engine.connect() as conn:
        return compute.preview(conn, config, now=now)


def apply_config(engine: sa.Engine, source_yaml: str, *, now: datetime) -> tuple[int,
                                                                                  list[EventIn]]:
    """Validate, store and put a configuration in force, moving every customer it moves."""
    parse(source_yaml, source="rf configuration")
    with engine.begin() as conn:
        conn.execute(sa.insert(CONFIGS).values(source_yaml=source_yaml, applied_at=now))
    return recompute_all(engine, now=now, cause="config")


def snapshot(conn: sa.Connection, day: date) -> None:
    """Record today's segment sizes (a second run the same day replaces them)."""
    sizes = conn.execute(sa.select(compute.CURRENT.c.segment, sa.func.count())
                         .group_by(compute.CURRENT.c.segment)).all()
    conn.execute(sa.delete(SNAPSHOTS).where(SNAPSHOTS.c.day == day))
    if sizes:
        conn.execute(sa.insert(SNAPSHOTS), [
            {"day": day, "segment": str(s), "customers": int(n)} for s, n in sizes])


def _mark(conn: sa.Connection, now: datetime) -> None:
    updated = conn.execute(sa.update(MARKS).where(MARKS.c.name == DAILY)
                           .values(done_until=now)).rowcount
    if not updated:
        conn.execute(sa.insert(MARKS).values(name=DAILY, done_until=now))


def unrouted_segment_events(engine: sa.Engine, *, older_than: datetime,
                            limit: int = 10_000) -> list[EventIn]:
    """Segment events stored but never routed (the process died after the move's commit)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(EVENTS).where(
            EVENTS.c.type.in_(("segment.entered", "segment.exited")),
            EVENTS.c.routed_at.is_(None), EVENTS.c.received_at < older_than)
            .order_by(EVENTS.c.received_at).limit(limit)).mappings().all()
    return [_event(row) for row in rows]


def _event(row: Any) -> EventIn:
    return EventIn(event_id=row["event_id"], type=row["type"], customer_id=row["customer_id"],
                   occurred_at=row["occurred_at"], data=row["data"])

"""RF segments computed in SQL, for one customer, a list of customers, or the base in pages.

Recency is whole days since the last counted purchase; frequency is counted purchases within
the window. Both are aggregated from `orders`, and the grid becomes one nested CASE, so a full
recompute costs about one `GROUP BY customer_id` over the orders.

Every write happens in a transaction that first locks the customers it touches (a no-op update
of their rows: PostgreSQL's row locks, SQLite's write lock) and only then computes, so a purchase
and the daily run racing for one customer compute on the same committed orders and a move is
recorded exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from tropa.segments.config import RfConfig
from tropa.store.segment_models import CustomerSegment, SegmentMove
from tropa.store.types import UtcDateTime

ORDERS = sa.table(
    "orders",
    sa.column("customer_id", sa.String),
    sa.column("placed_at", UtcDateTime()),
    sa.column("counted", sa.Boolean),
)
CUSTOMERS = sa.table("customers", sa.column("id", sa.String), sa.column("updated_at"))
CURRENT = SQLModel.metadata.tables[CustomerSegment.__tablename__]
MOVES = SQLModel.metadata.tables[SegmentMove.__tablename__]


@dataclass(frozen=True)
class Move:
    """A customer's move between segments (None: no segment)."""

    customer_id: str
    from_segment: str | None
    to_segment: str | None
    at: datetime
    cause: str
    move_id: int


def segment_of(config: RfConfig, now: datetime) -> sa.ColumnElement[str]:
    """The segment of the customer a `GROUP BY customer_id` over counted orders aggregates."""
    last = sa.func.max(ORDERS.c.placed_at)
    in_window = sa.func.count().filter(
        ORDERS.c.placed_at >= now - timedelta(days=config.window_days))

    def by_frequency(recency: str) -> sa.ColumnElement[str]:
        highest = config.frequency[-1].name
        whens = [(in_window <= band.upper, sa.literal(config.grid[(recency, band.name)]))
                 for band in config.frequency[:-1] if band.upper is not None]
        return sa.case(*whens, else_=sa.literal(config.grid[(recency, highest)]))

    whens = [(last > now - timedelta(days=band.upper + 1), by_frequency(band.name))
             for band in config.recency[:-1] if band.upper is not None]
    return sa.case(*whens, else_=by_frequency(config.recency[-1].name))


def computed(config: RfConfig, now: datetime,
             *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """(customer_id, segment) for customers with a counted purchase, filtered by `where`."""
    return (sa.select(ORDERS.c.customer_id, segment_of(config, now).label("segment"))
            .where(ORDERS.c.counted.is_(True), *where)
            .group_by(ORDERS.c.customer_id))


def lock_customers(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> None:
    """Serialise segment writes for these customers with purchases and the daily run."""
    conn.execute(sa.update(CUSTOMERS).where(*where).values(updated_at=CUSTOMERS.c.updated_at))


def refresh(conn: sa.Connection, config: RfConfig, customer_ids: Sequence[str], *,
            now: datetime, cause: str) -> list[Move]:
    """Recompute these customers' segments and record who moved (call inside a transaction)."""
    if not customer_ids:
        return []
    ids = sorted(set(customer_ids))
    lock_customers(conn, CUSTOMERS.c.id.in_(ids))
    new = _segments(conn, computed(config, now, ORDERS.c.customer_id.in_(ids)))
    old = _segments(conn, sa.select(CURRENT.c.customer_id, CURRENT.c.segment)
                    .where(CURRENT.c.customer_id.in_(ids)))
    return _write(conn, {c: new.get(c) for c in ids}, old, now=now, cause=cause)


def refresh_range(conn: sa.Connection, config: RfConfig, after: str | None, upto: str, *,
                  now: datetime, cause: str) -> list[Move]:
    """Recompute every customer with an id in (after, upto]; one page of a full recompute."""
    lower = [] if after is None else [CUSTOMERS.c.id > after]
    lock_customers(conn, *lower, CUSTOMERS.c.id <= upto)
    in_orders = [] if after is None else [ORDERS.c.customer_id > after]
    new = _segments(conn, computed(config, now, *in_orders, ORDERS.c.customer_id <= upto))
    in_current = [] if after is None else [CURRENT.c.customer_id > after]
    old = _segments(conn, sa.select(CURRENT.c.customer_id, CURRENT.c.segment)
                    .where(*in_current, CURRENT.c.customer_id <= upto))
    target = {c: new.get(c) for c in set(new) | set(old)}
    return _write(conn, target, old, now=now, cause=cause)


def customer_pages(conn: sa.Connection, page_size: int) -> Iterable[tuple[str | None, str]]:
    """(after, upto] id ranges covering every customer, `page_size` customers each."""
    after: str | None = None
    while True:
        query = sa.select(CUSTOMERS.c.id).order_by(CUSTOMERS.c.id).limit(page_size)
        if after is not None:
            query = query.where(CUSTOMERS.c.id > after)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return
        yield after, ids[-1]
        after = ids[-1]


def preview(conn: sa.Connection, config: RfConfig, *, now: datetime) -> dict[tuple[str | None,
                                                                                  str | None], int]:
    """How many customers would move from which segment to which under `config`."""
    new = computed(config, now).subquery()
    joined = (sa.select(CURRENT.c.segment, new.c.segment, sa.func.count())
              .select_from(new.outerjoin(CURRENT, CURRENT.c.customer_id == new.c.customer_id))
              .where(CURRENT.c.segment.is_distinct_from(new.c.segment))
              .group_by(CURRENT.c.segment, new.c.segment))
    matrix: dict[tuple[str | None, str | None], int] = {
        (row[0], row[1]): int(row[2]) for row in conn.execute(joined)}
    # Customers who keep a segment now but would have none (every purchase refunded).
    gone = (sa.select(CURRENT.c.segment, sa.func.count())
            .where(~sa.exists().where(new.c.customer_id == CURRENT.c.customer_id))
            .group_by(CURRENT.c.segment))
    for row in conn.execute(gone):
        matrix[(row[0], None)] = int(row[1])
    return matrix


def _segments(conn: sa.Connection, query: sa.Select[Any]) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in conn.execute(query)}


def _write(conn: sa.Connection, target: dict[str, str | None], old: dict[str, str], *,
           now: datetime, cause: str) -> list[Move]:
    changed = {c: s for c, s in target.items() if old.get(c) != s}
    if not changed:
        return []
    entered = [{"customer_id": c, "segment": s, "since": now}
               for c, s in changed.items() if s is not None and c not in old]
    moved = [{"c": c, "s": s, "since": now}
             for c, s in changed.items() if s is not None and c in old]
    left = [c for c, s in changed.items() if s is None]
    if entered:
        conn.execute(sa.insert(CURRENT), entered)
    if moved:
        conn.execute(sa.update(CURRENT).where(CURRENT.c.customer_id == sa.bindparam("c"))
                     .values(segment=sa.bindparam("s"), since=sa.bindparam("since")), moved)
    if left:
        conn.execute(sa.delete(CURRENT).where(CURRENT.c.customer_id.in_(left)))
    rows: list[dict[str, Any]] = [
        {"customer_id": c, "from_segment": old.get(c), "to_segment": s, "at": now, "cause": cause}
        for c, s in sorted(changed.items())]
    ids = conn.execute(sa.insert(MOVES).returning(MOVES.c.id, sort_by_parameter_order=True),
                       rows).scalars().all()
    return [Move(customer_id=r["customer_id"], from_segment=r["from_segment"],
                 to_segment=r["to_segment"], at=now, cause=cause, move_id=int(i))
            for r, i in zip(rows, ids, strict=True)]

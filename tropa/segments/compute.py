"""RF segments computed in SQL, for one customer, a list of customers, or the base in pages.

Recency is whole days since the last counted purchase; frequency is counted purchases within
the window. Both are aggregated from `orders`, and the grid becomes one nested CASE, so a full
recompute costs about one `GROUP BY customer_id` over the orders.

Customers who may have moved are found by reading without locks; they are then locked (row
locks on PostgreSQL, the write lock on SQLite) and computed again before anything is written,
so a purchase and the daily run racing for one customer compute on the same committed orders
and a move is recorded exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
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


def among(conn: sa.Connection, column: sa.ColumnElement[Any],
          ids: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN ids`; one array parameter on PostgreSQL, so ten thousand ids stay cheap."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(ids),
                                              type_=postgresql.ARRAY(sa.String)))
    return column.in_(ids)


def lock_customers(conn: sa.Connection, customer_ids: Sequence[str]) -> None:
    """Serialise segment writes for these customers with purchases and the daily run:
    PostgreSQL's row locks; on SQLite any write takes the database's write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(CUSTOMERS.c.id).where(among(conn, CUSTOMERS.c.id, customer_ids))
                     .with_for_update())
    else:
        conn.execute(sa.update(CUSTOMERS).where(among(conn, CUSTOMERS.c.id, customer_ids))
                     .values(updated_at=CUSTOMERS.c.updated_at))


def refresh(conn: sa.Connection, config: RfConfig, customer_ids: Sequence[str], *,
            now: datetime, cause: str) -> list[Move]:
    """Recompute these customers' segments and record who moved (call inside a transaction)."""
    if not customer_ids:
        return []
    ids = sorted(set(customer_ids))
    return _settle(conn, config, _changed(conn, config, now, ids), now=now, cause=cause)


def _changed(conn: sa.Connection, config: RfConfig, now: datetime,
             ids: Sequence[str]) -> list[str]:
    new = _segments(conn, computed(config, now, among(conn, ORDERS.c.customer_id, ids)))
    old = _segments(conn, sa.select(CURRENT.c.customer_id, CURRENT.c.segment)
                    .where(among(conn, CURRENT.c.customer_id, ids)))
    return [c for c in ids if new.get(c) != old.get(c)]


def _settle(conn: sa.Connection, config: RfConfig, candidates: Sequence[str], *,
            now: datetime, cause: str) -> list[Move]:
    # Reading without locks finds who may have moved (the common case: nobody); those are
    # then locked and computed again, so a concurrent purchase or run cannot write a stale
    # segment or record a move twice.
    if not candidates:
        return []
    lock_customers(conn, candidates)
    new = _segments(conn, computed(config, now, among(conn, ORDERS.c.customer_id, candidates)))
    old = _segments(conn, sa.select(CURRENT.c.customer_id, CURRENT.c.segment)
                    .where(among(conn, CURRENT.c.customer_id, candidates)))
    return _write(conn, {c: new.get(c) for c in candidates}, old, now=now, cause=cause)


def changed_everywhere(conn: sa.Connection, config: RfConfig, *, now: datetime) -> list[str]:
    """Every customer whose segment differs from what their purchases say now: one aggregate
    over the orders joined to the current segments, about the cost of a bare GROUP BY."""
    new = computed(config, now).subquery()
    query = (sa.select(sa.func.coalesce(new.c.customer_id, CURRENT.c.customer_id))
             .select_from(new.join(CURRENT, CURRENT.c.customer_id == new.c.customer_id,
                                   full=True))
             .where(new.c.segment.is_distinct_from(CURRENT.c.segment)))
    return sorted(str(c) for c in conn.execute(query).scalars())


def settle(conn: sa.Connection, config: RfConfig, candidates: Sequence[str], *,
           now: datetime, cause: str) -> list[Move]:
    """Lock these customers, compute them again and record their moves."""
    return _settle(conn, config, candidates, now=now, cause=cause)


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
    # Moved and left rows go, moved and entered rows come back: two set-based statements
    # instead of one UPDATE per customer.
    gone = [c for c in changed if c in old]
    if gone:
        conn.execute(sa.delete(CURRENT).where(among(conn, CURRENT.c.customer_id, gone)))
    rows_now = [{"customer_id": c, "segment": s, "since": now}
                for c, s in changed.items() if s is not None]
    if rows_now:
        conn.execute(sa.insert(CURRENT).returning(CURRENT.c.customer_id), rows_now)
    rows: list[dict[str, Any]] = [
        {"customer_id": c, "from_segment": old.get(c), "to_segment": s, "at": now, "cause": cause}
        for c, s in sorted(changed.items())]
    ids = conn.execute(sa.insert(MOVES).returning(MOVES.c.id, sort_by_parameter_order=True),
                       rows).scalars().all()
    return [Move(customer_id=r["customer_id"], from_segment=r["from_segment"],
                 to_segment=r["to_segment"], at=now, cause=cause, move_id=int(i))
            for r, i in zip(rows, ids, strict=True)]

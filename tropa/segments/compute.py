"""RF segments computed in SQL, for one customer, a list of customers, or the base in pages.

Recency is whole days since the last counted purchase; frequency is counted purchases within
the window. Both are aggregated from `orders` and the grid becomes one nested CASE, so the
segment every customer should have, compared with the one they have, is one pass over the
index of counted orders by customer (`ix_orders_counted_customer_placed_at`, read without
touching the table) merged with `customer_segments` in the same order.

Customers who may have moved are found by reading without locks; they are then locked and
computed again before anything is written, so a purchase and the daily run racing for one
customer compute on the same committed orders and a move is recorded exactly once. On
PostgreSQL the lock is the row of the customer's current segment (the customer's row when they
have none yet), and one statement computes them and writes every move: the changed segments,
the first segments, the deletions, the history (`_move`). On SQLite, where the write lock is
the database's, the moves are written in a few set-based statements (`write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from tropa.segments.config import RfConfig
from tropa.store import bulk
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

Change = tuple[str, str | None, str | None]
"""(customer, segment now, segment their purchases give): a move to make."""


@dataclass(frozen=True, slots=True)
class Move:
    """A customer's move between segments (None: no segment)."""

    customer_id: str
    from_segment: str | None
    to_segment: str | None
    at: datetime
    cause: str
    move_id: int


def segment_of(config: RfConfig, now: datetime, *,
               none_without_orders: bool = False) -> sa.ColumnElement[str]:
    """The segment of the customer a `GROUP BY customer_id` over counted orders aggregates
    (or an aggregate over one customer's counted orders, None when they have none)."""
    last = sa.func.max(ORDERS.c.placed_at)
    in_window = sa.func.count().filter(
        ORDERS.c.placed_at >= now - timedelta(days=config.window_days))

    def by_frequency(recency: str) -> sa.ColumnElement[str]:
        highest = config.frequency[-1].name
        whens = [(in_window <= band.upper, sa.literal(config.grid[(recency, band.name)]))
                 for band in config.frequency[:-1] if band.upper is not None]
        return sa.case(*whens, else_=sa.literal(config.grid[(recency, highest)]))

    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[Any]]] = [
        (last > now - timedelta(days=band.upper + 1), by_frequency(band.name))
        for band in config.recency[:-1] if band.upper is not None]
    if none_without_orders:
        whens.insert(0, (last.is_(None), sa.null()))
    return sa.case(*whens, else_=by_frequency(config.recency[-1].name))


def computed(config: RfConfig, now: datetime,
             *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """(customer_id, segment) for customers with a counted purchase, filtered by `where`."""
    # `WHERE counted` spelled as the partial index's predicate, so the index is used.
    return (sa.select(ORDERS.c.customer_id, segment_of(config, now).label("segment"))
            .where(ORDERS.c.counted, *where)
            .group_by(ORDERS.c.customer_id))


def differences(config: RfConfig, now: datetime) -> sa.Select[Any]:
    """(customer_id, from_segment, to_segment) of every customer whose stored segment
    differs from the one their purchases give now, by customer: one aggregate over the
    orders joined to the current segments (merged in customer order on PostgreSQL, looked
    up by key on SQLite)."""
    new = computed(config, now).subquery()
    customer = sa.func.coalesce(new.c.customer_id, CURRENT.c.customer_id)
    return (sa.select(customer, CURRENT.c.segment, new.c.segment)
            .select_from(new.join(CURRENT, CURRENT.c.customer_id == new.c.customer_id,
                                  full=True))
            .where(new.c.segment.is_distinct_from(CURRENT.c.segment))
            .order_by(customer))


def changes_among(conn: sa.Connection, config: RfConfig, now: datetime,
                  ids: Sequence[str]) -> list[Change]:
    """The moves these customers are due, by customer: each one's current segment by key and
    the aggregate of their counted orders from the index, customer by customer."""
    wanted = bulk.rows(conn, ("customer_id",), [(c,) for c in sorted(set(ids))])
    # A correlated aggregate per customer: the plan is a look-up in the index of counted
    # orders whatever the number of ids, where an `IN` list of thousands lets PostgreSQL
    # choose a bitmap scan that reads the table.
    new = (sa.select(segment_of(config, now, none_without_orders=True))
           .where(ORDERS.c.customer_id == wanted.c.customer_id, ORDERS.c.counted)
           .scalar_subquery())
    rows = conn.execute(
        sa.select(wanted.c.customer_id, CURRENT.c.segment, new)
        .select_from(wanted.outerjoin(CURRENT, CURRENT.c.customer_id == wanted.c.customer_id))
        .order_by(wanted.c.customer_id)).all()
    return [(str(c), old, to) for c, old, to in rows if old != to]


def lock_customers(conn: sa.Connection, customer_ids: Sequence[str]) -> None:
    """Serialise segment writes for these customers with purchases and the daily run:
    PostgreSQL's row locks; on SQLite any write takes the database's write lock."""
    if conn.dialect.name == "postgresql":
        # In id order, so two transactions locking overlapping sets cannot deadlock.
        conn.execute(sa.select(CUSTOMERS.c.id)
                     .where(bulk.among(conn, CUSTOMERS.c.id, customer_ids))
                     .order_by(CUSTOMERS.c.id).with_for_update())
    else:
        conn.execute(sa.update(CUSTOMERS).where(bulk.among(conn, CUSTOMERS.c.id, customer_ids))
                     .values(updated_at=CUSTOMERS.c.updated_at))


def refresh(conn: sa.Connection, config: RfConfig, customer_ids: Sequence[str], *,
            now: datetime, cause: str) -> list[Move]:
    """Recompute these customers' segments and record who moved (call inside a transaction).

    They are locked first and computed once: the customers a purchase names are the ones
    likely to move, so finding them without locks first would compute them twice."""
    return settle(conn, config, customer_ids, now=now, cause=cause)


def changed_everywhere(conn: sa.Connection, config: RfConfig, *, now: datetime) -> list[str]:
    """Every customer whose segment differs from what their purchases say now, by id: one
    aggregate over the orders merged with the current segments."""
    _merge_plan(conn)
    return [str(row[0]) for row in conn.execute(differences(config, now))]


def settle(conn: sa.Connection, config: RfConfig, candidates: Sequence[str], *,
           now: datetime, cause: str) -> list[Move]:
    """Lock these customers, compute them and record their moves."""
    # Whoever found them read without locks (the full recompute, the daily run); computing
    # them again under the lock means a concurrent purchase or run cannot write a stale
    # segment or record a move twice.
    if not candidates:
        return []
    if conn.dialect.name != "postgresql":
        lock_customers(conn, candidates)
        return write(conn, changes_among(conn, config, now, candidates), now=now, cause=cause)
    # Thousands of look-ups by key are estimated dear enough to be compiled, which costs
    # more than running them (for this transaction only).
    conn.execute(sa.text("SET LOCAL jit = off"))
    # Each customer is looked up by key, whether read or written: a hash or merge join with
    # the million current segments is estimated cheaper and is several times dearer.
    conn.execute(sa.text("SET LOCAL enable_hashjoin = off"))
    conn.execute(sa.text("SET LOCAL enable_mergejoin = off"))
    moves: list[Move] = []
    pending = sorted(set(candidates))
    while pending:
        # The current segment row of those who have one, the customer row of the others (a
        # page of the segments is written anyway; the customers' would be written only for
        # the lock). Each set in id order, so overlapping refreshes queue instead of
        # deadlocking; only a second round (someone got a first segment meanwhile) locks
        # while holding the first's, and PostgreSQL would then end one of a pair that cycles.
        held = set(conn.execute(sa.select(CURRENT.c.customer_id)
                                .where(bulk.among(conn, CURRENT.c.customer_id, pending))
                                .order_by(CURRENT.c.customer_id).with_for_update()).scalars())
        rowless = [c for c in pending if c not in held]
        if rowless:
            lock_customers(conn, rowless)
        done, pending = _move(conn, config, [(c, "row" if c in held else "customer")
                                             for c in pending], now=now, cause=cause)
        moves += done
    return sorted(moves, key=lambda m: m.customer_id)


def _move(conn: sa.Connection, config: RfConfig, locked: Sequence[tuple[str, str]], *,
          now: datetime, cause: str) -> tuple[list[Move], list[str]]:
    """PostgreSQL: compute these (customer, lock held: "row" or "customer") and write their
    moves in one statement; returns the moves and the customers to compute again."""
    at = sa.literal(now, UtcDateTime())
    wanted = bulk.rows(conn, ("customer_id", "lock"), locked)
    new = (sa.select(segment_of(config, now, none_without_orders=True))
           .where(ORDERS.c.customer_id == wanted.c.customer_id, ORDERS.c.counted)
           .scalar_subquery())
    diff = (sa.select(wanted.c.customer_id, wanted.c.lock, CURRENT.c.segment.label("old"),
                      new.label("new"))
            .select_from(wanted.outerjoin(CURRENT,
                                          CURRENT.c.customer_id == wanted.c.customer_id))
            # Materialized, so the filter below does not compute each aggregate twice.
            .cte("diff").prefix_with("MATERIALIZED"))
    changed = (sa.select(diff).where(diff.c.old.is_distinct_from(diff.c.new))
               .cte("changed"))
    # Only what this transaction locked before the statement began is written: a segment row,
    # or the customer row of one who had no segment and still has none (they are inserted).
    # Who got a first segment from another transaction in between is computed again, under
    # the lock of that row. The comparisons with the segment read are guards only.
    updated = (sa.update(CURRENT)
               .where(CURRENT.c.customer_id == changed.c.customer_id, changed.c.lock == "row",
                      CURRENT.c.segment == changed.c.old, changed.c.new.is_not(None))
               .values(segment=changed.c.new, since=at)
               .returning(CURRENT.c.customer_id, changed.c.old.label("from_segment"),
                          changed.c.new.label("to_segment"))
               .cte("updated"))
    insert = postgresql.insert(CURRENT).from_select(
        ["customer_id", "segment", "since"],
        sa.select(changed.c.customer_id, changed.c.new, at)
        .where(changed.c.lock == "customer", changed.c.old.is_(None))
        .order_by(changed.c.customer_id))
    inserted = (insert.on_conflict_do_nothing(index_elements=[CURRENT.c.customer_id])
                .returning(CURRENT.c.customer_id, CURRENT.c.segment).cte("inserted"))
    deleted = (sa.delete(CURRENT)
               .where(CURRENT.c.customer_id == changed.c.customer_id, changed.c.lock == "row",
                      CURRENT.c.segment == changed.c.old, changed.c.new.is_(None))
               .returning(CURRENT.c.customer_id, CURRENT.c.segment).cte("deleted"))
    moved = sa.union_all(
        sa.select(updated.c.customer_id, updated.c.from_segment, updated.c.to_segment),
        sa.select(inserted.c.customer_id, sa.null(), inserted.c.segment),
        sa.select(deleted.c.customer_id, deleted.c.segment, sa.null())).cte("moved")
    history = (sa.insert(MOVES).from_select(
        ["customer_id", "from_segment", "to_segment", "at", "cause"],
        sa.select(*moved.c, at, sa.literal(cause, sa.String)).order_by(moved.c[0]))
        .returning(MOVES.c.id, MOVES.c.customer_id, MOVES.c.from_segment,
                   MOVES.c.to_segment).cte("history"))
    missed = (sa.select(sa.null(), changed.c.customer_id, sa.null(), sa.null())
              .where(changed.c.customer_id.not_in(sa.select(moved.c[0]))))
    moves: list[Move] = []
    again: list[str] = []
    for move_id, customer, old, to in conn.execute(sa.union_all(sa.select(*history.c),
                                                                 missed)):
        if move_id is None:
            again.append(str(customer))
        else:
            moves.append(Move(customer_id=str(customer), from_segment=old, to_segment=to,
                              at=now, cause=cause, move_id=int(move_id)))
    return moves, sorted(again)


def write(conn: sa.Connection, changes: Sequence[Change], *, now: datetime,
          cause: str) -> list[Move]:
    """Store these moves: current segments, then one history row each (set-based)."""
    if not changes:
        return []
    at = sa.literal(now, UtcDateTime())
    gone = [c for c, _, to in changes if to is None]
    if gone:
        conn.execute(sa.delete(CURRENT).where(bulk.among(conn, CURRENT.c.customer_id, gone)))
    entered = [(c, to) for c, _, to in changes if to is not None]
    if entered:
        src = bulk.rows(conn, ("customer_id", "segment"), entered)
        # WHERE true: SQLite needs it to tell the upsert's ON from a join's.
        upsert = _insert(conn, CURRENT).from_select(
            ["customer_id", "segment", "since"],
            sa.select(src.c.customer_id, src.c.segment, at).where(sa.true()))
        conn.execute(upsert.on_conflict_do_update(
            index_elements=[CURRENT.c.customer_id],
            set_={"segment": upsert.excluded.segment, "since": upsert.excluded.since}))
    src = bulk.rows(conn, ("customer_id", "from_segment", "to_segment"), changes)
    history = sa.insert(MOVES).from_select(
        ["customer_id", "from_segment", "to_segment", "at", "cause"],
        sa.select(src.c.customer_id, src.c.from_segment, src.c.to_segment, at,
                  sa.literal(cause, sa.String))).returning(MOVES.c.id, MOVES.c.customer_id)
    ids = {str(c): int(i) for i, c in conn.execute(history).all()}
    return [Move(customer_id=c, from_segment=old, to_segment=new, at=now, cause=cause,
                 move_id=ids[c]) for c, old, new in changes]


def preview(conn: sa.Connection, config: RfConfig, *, now: datetime) -> dict[tuple[str | None,
                                                                                  str | None], int]:
    """How many customers would move from which segment to which under `config`."""
    _merge_plan(conn)
    moves = differences(config, now).order_by(None).subquery()
    columns = list(moves.c)
    counts = (sa.select(columns[1], columns[2], sa.func.count())
              .group_by(columns[1], columns[2]))
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(counts)}


def _merge_plan(conn: sa.Connection) -> None:
    # The aggregate comes out of the orders index in customer order, and the current
    # segments out of theirs: merging the two streams beats hashing either. PostgreSQL's
    # estimates of the two plans are close and it sometimes hashes, which costs about half
    # as much again, and spills to disk at a million customers with the default work_mem.
    # For this transaction only.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL enable_hashjoin = off"))
        conn.execute(sa.text("SET LOCAL enable_hashagg = off"))


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    # Both dialects spell the upsert alike, from their own `insert`.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)

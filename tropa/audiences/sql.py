"""An audience as one SQL query over customers: set-based, the same on PostgreSQL and SQLite.

Conditions on other tables are semi-joins (`customers.id IN (...)`), so each reads its own
index once (customer_dates by path and month-day, customer_segments by segment, purchase_stats
by last purchase, orders by time) instead of probing per customer. Every leaf is two-valued
(a NULL never leaks out), so `not:` is exact.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from tropa.audiences.conditions import (
    All,
    AnyOf,
    Audience,
    Condition,
    Consent,
    FieldCond,
    Has,
    LastPurchase,
    Loyalty,
    Not,
    Op,
    Purchases,
    Segment,
    Tag,
)
from tropa.audiences.json_sql import (
    json_array_has,
    json_bool,
    json_number,
    json_present,
    json_text,
    substring,
)
from tropa.store.customer_models import Card, Order, PurchaseStats
from tropa.store.loyalty_models import LoyaltyAccount, LoyaltyBucket
from tropa.store.models import Customer
from tropa.store.segment_models import CustomerSegment
from tropa.store.trigger_models import CustomerDate

CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
DATES: sa.Table = CustomerDate.__table__  # type: ignore[attr-defined]
CARDS: sa.Table = Card.__table__  # type: ignore[attr-defined]
ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
STATS: sa.Table = PurchaseStats.__table__  # type: ignore[attr-defined]
ACCOUNTS: sa.Table = LoyaltyAccount.__table__  # type: ignore[attr-defined]
BUCKETS: sa.Table = LoyaltyBucket.__table__  # type: ignore[attr-defined]
SEGMENTS: sa.Table = CustomerSegment.__table__  # type: ignore[attr-defined]
Bool = ColumnElement[bool]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
    "gt": operator.gt, "gte": operator.ge,
}


def audience_select(audience: Audience, *, now: datetime) -> sa.Select[tuple[str]]:
    """`SELECT customers.id AS customer_id ... WHERE <filter>`; add `.order_by` and a key
    bound (`customer_id > :after`) for pages, or use it as a subquery."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return sa.select(CUSTOMERS.c.id.label("customer_id")).where(where(audience.root, now))


def page_customer_ids(engine: sa.Engine, audience: Audience, *, now: datetime,
                      after_id: str | None, limit: int) -> list[str]:
    """The next `limit` ids of the audience after `after_id`, in id order."""
    query = audience_select(audience, now=now)
    if after_id is not None:
        query = query.where(CUSTOMERS.c.id > after_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(CUSTOMERS.c.id).limit(limit)).scalars()
        return [str(customer_id) for customer_id in rows]


def count(engine: sa.Engine, audience: Audience, *, now: datetime) -> int:
    """How many customers the audience holds now."""
    inner = audience_select(audience, now=now).subquery()
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def where(cond: Condition, now: datetime) -> Bool:
    """The WHERE clause of one condition over `customers`."""
    if isinstance(cond, All):
        return sa.and_(sa.true(), *(where(c, now) for c in cond.items))
    if isinstance(cond, AnyOf):
        return sa.or_(sa.false(), *(where(c, now) for c in cond.items))
    if isinstance(cond, Not):
        return sa.not_(where(cond.item, now))
    if isinstance(cond, Has):
        return _has(cond.identifier)
    if isinstance(cond, Tag):
        return json_array_has(CUSTOMERS.c.tags, (), cond.name)
    if isinstance(cond, Consent):
        if cond.category != "marketing":  # as the policy gate: service needs no yes
            return sa.true()
        return sa.func.coalesce(
            json_bool(CUSTOMERS.c.consents, ("marketing", cond.channel)) == "true", False)
    if isinstance(cond, Segment):
        return _member(sa.select(SEGMENTS.c.customer_id)
                       .where(SEGMENTS.c.segment.in_(cond.names)))
    if isinstance(cond, Loyalty):
        return _loyalty(cond, now)
    if isinstance(cond, Purchases):
        return _purchases(cond, now)
    if isinstance(cond, LastPurchase):
        return _last_purchase(cond, now)
    return _field(cond, now)


def _member(ids: sa.Select[Any]) -> Bool:
    return CUSTOMERS.c.id.in_(ids)


def _sure(value: ColumnElement[Any], test: Bool) -> Bool:
    """`test` made two-valued: false where `value` is NULL."""
    return sa.and_(value.is_not(None), test)


def _has(identifier: str) -> Bool:
    if identifier == "card":
        return _member(sa.select(CARDS.c.customer_id).where(CARDS.c.status == "active"))
    column = CUSTOMERS.c[identifier]
    return sa.and_(column.is_not(None), column != "")


def _holds(ops: tuple[Op, ...], value: int) -> bool:
    return all(_COMPARE[op](value, bound) for op, bound in ops)


def _aggregate(rows: sa.Select[Any], tests: list[tuple[ColumnElement[Any], tuple[Op, ...]]]
               ) -> Bool:
    """Customers whose aggregates (grouped by customer_id in `rows`) pass every test; one
    with no rows counts as all zeros, so `count: {lt: 2}` finds those who never bought."""
    def passing(column: ColumnElement[Any], ops: tuple[Op, ...]) -> Bool:
        return sa.and_(sa.true(), *(_COMPARE[op](column, bound) for op, bound in ops))

    every = sa.and_(sa.true(), *(passing(c, ops) for c, ops in tests))
    if all(_holds(ops, 0) for _, ops in tests):
        return CUSTOMERS.c.id.not_in(rows.having(sa.not_(every)))
    return CUSTOMERS.c.id.in_(rows.having(every))


def _loyalty(cond: Loyalty, now: datetime) -> Bool:
    parts: list[Bool] = []
    if cond.balance:
        live = sa.and_(BUCKETS.c.remaining > 0, BUCKETS.c.active_from <= now,
                       sa.or_(BUCKETS.c.expires_at.is_(None), BUCKETS.c.expires_at > now))
        rows = (sa.select(ACCOUNTS.c.customer_id)
                .select_from(ACCOUNTS.join(BUCKETS, BUCKETS.c.account_id == ACCOUNTS.c.id))
                .where(ACCOUNTS.c.kind == "bonus", ACCOUNTS.c.programme == cond.programme, live)
                .group_by(ACCOUNTS.c.customer_id))
        parts.append(_aggregate(rows, [(sa.func.sum(BUCKETS.c.remaining), cond.balance)]))
    if cond.levels is not None:
        parts.append(_member(sa.select(ACCOUNTS.c.customer_id).where(
            ACCOUNTS.c.kind == "qualification", ACCOUNTS.c.programme == cond.programme,
            ACCOUNTS.c.level.in_(cond.levels))))
    return sa.and_(sa.true(), *parts)


def _purchases(cond: Purchases, now: datetime) -> Bool:
    tests: list[tuple[ColumnElement[Any], tuple[Op, ...]]] = []
    if cond.within_seconds is None:
        rows = sa.select(STATS.c.customer_id).group_by(STATS.c.customer_id)
        if cond.currency is not None:
            rows = rows.where(STATS.c.currency == cond.currency)
        number: ColumnElement[Any] = sa.func.sum(STATS.c.orders_count)
        amount: ColumnElement[Any] = sa.func.sum(STATS.c.total_spent)
    else:
        since = now - timedelta(seconds=cond.within_seconds)
        rows = (sa.select(ORDERS.c.customer_id)
                .where(ORDERS.c.counted.is_(True), ORDERS.c.placed_at >= since)
                .group_by(ORDERS.c.customer_id))
        if cond.currency is not None:
            rows = rows.where(ORDERS.c.currency == cond.currency)
        number = sa.func.count()
        amount = sa.func.sum(ORDERS.c.total - ORDERS.c.refunded)
    if cond.count:
        tests.append((number, cond.count))
    if cond.sum:
        tests.append((amount, cond.sum))
    return _aggregate(rows, tests)


def _last_purchase(cond: LastPurchase, now: datetime) -> Bool:
    last = sa.func.max(STATS.c.last_purchase_at)
    rows = (sa.select(STATS.c.customer_id).where(STATS.c.last_purchase_at.is_not(None))
            .group_by(STATS.c.customer_id))
    parts: list[Bool] = []
    for op, value in cond.ops:
        if op == "exists":
            parts.append(_member(rows) if value else CUSTOMERS.c.id.not_in(rows))
        elif op == "within":
            parts.append(_member(rows.having(last >= now - timedelta(seconds=value))))
        else:
            parts.append(_member(rows.having(last < now - timedelta(seconds=value))))
    return sa.and_(sa.true(), *parts)


# -- fields -----------------------------------------------------------------------------------


def _field(cond: FieldCond, now: datetime) -> Bool:
    parts: list[Bool] = []
    dated: list[Bool] = []
    for op, value in cond.ops:
        if _through_dates(cond, op):
            dated.append(_date_test(op, value, now))
        else:
            parts.append(_field_op(cond, op, value, now))
    if dated:
        # one row must pass every date test, so `month: 5, day: 14` is 14 May of one child
        assert cond.date_path is not None
        parts.append(_member(sa.select(DATES.c.customer_id).where(
            DATES.c.path == cond.date_path, *dated)))
    return sa.and_(sa.true(), *parts)


def _through_dates(cond: FieldCond, op: str) -> bool:
    if op in ("month", "day"):
        return True
    if "[]" in cond.path:
        return op != "exists"
    return cond.kind == "json" and cond.date_path is not None and op not in ("exists",
                                                                               "contains")


def _field_op(cond: FieldCond, op: str, value: Any, now: datetime) -> Bool:
    if "[]" in cond.path:  # only `exists` comes here
        assert cond.date_path is not None
        rows = sa.select(DATES.c.customer_id).where(DATES.c.path == cond.date_path)
        return _member(rows) if value else CUSTOMERS.c.id.not_in(rows)
    if cond.kind == "json":
        return _json_op(cond.keys, op, value)
    column = CUSTOMERS.c[cond.path]
    if op == "exists":
        present: Bool = column.is_not(None)
        if cond.kind == "text":
            present = sa.and_(present, column != "")
        return present if value else sa.not_(present)
    if op in ("older_than", "within"):
        cut: date | datetime = now - timedelta(seconds=value)
        if cond.kind == "date":
            cut = cut.date() if isinstance(cut, datetime) else cut
        return _sure(column, column < cut if op == "older_than" else column >= cut)
    if op == "contains":
        return _sure(column, substring(column, value))
    if op == "in":
        return _sure(column, column.in_([_column_value(cond, v) for v in value]))
    return _sure(column, _COMPARE[op](column, _column_value(cond, value)))


def _column_value(cond: FieldCond, value: Any) -> Any:
    if cond.kind == "date" and isinstance(value, datetime):
        return value.date()
    if cond.kind == "datetime" and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _json_op(keys: tuple[str, ...], op: str, value: Any) -> Bool:
    column = CUSTOMERS.c.attributes
    if op == "exists":
        present = json_present(column, keys)
        return present if value else sa.not_(present)
    if op == "contains":
        inside = json_array_has(column, keys, value)
        if isinstance(value, str):
            text = json_text(column, keys)
            inside = sa.or_(inside, _sure(text, substring(text, value)))
        return inside
    if op == "in":
        return sa.or_(sa.false(), *(_json_op(keys, "eq", v) for v in value))
    read, bound = _json_read(keys, value)
    return _sure(read, _COMPARE[op](read, bound))


def _json_read(keys: tuple[str, ...], value: Any) -> tuple[ColumnElement[Any], Any]:
    column = CUSTOMERS.c.attributes
    if isinstance(value, bool):
        return json_bool(column, keys), "true" if value else "false"
    if isinstance(value, int | float):
        return json_number(column, keys), value
    if isinstance(value, datetime | date):
        return json_text(column, keys), value.isoformat()
    return json_text(column, keys), value


def _date_test(op: str, value: Any, now: datetime) -> Bool:
    """A test on one customer_dates row (a date as the customer's local calendar day)."""
    if op == "month":
        return sa.or_(*(DATES.c.month_day.between(f"{m:02d}-01", f"{m:02d}-31")
                        for m in value))
    if op == "day":
        return sa.or_(*(DATES.c.month_day.like(f"%-{d:02d}") for d in value))
    if op in ("older_than", "within"):
        cut = (now - timedelta(seconds=value)).date()
        return DATES.c.value < cut if op == "older_than" else DATES.c.value >= cut
    if op == "in":
        return DATES.c.value.in_([_day(v) for v in value])
    result: Bool = _COMPARE[op](DATES.c.value, _day(value))
    return result


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

"""A plain Python reading of audience filters over rows loaded into memory: what the docs say
each condition means, written without SQL, to compare the SQL compiler against."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tropa.audiences.conditions import (
    All,
    AnyOf,
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

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
    "gt": operator.gt, "gte": operator.ge}


@dataclass
class Person:
    """Everything about one customer a filter can ask."""

    row: dict[str, Any]
    cards: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    segment: str | None = None
    accounts: list[dict[str, Any]] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    dates: list[dict[str, Any]] = field(default_factory=list)


def load(engine: sa.Engine) -> list[Person]:
    """Every customer with their rows, read table by table."""
    def rows(table: str) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            meta = sa.Table(table, sa.MetaData(), autoload_with=conn)
            return [dict(r) for r in conn.execute(sa.select(meta)).mappings()]

    from tropa.store.models import Customer

    with engine.connect() as conn:
        people = {r["id"]: Person(row=dict(r)) for r in conn.execute(
            sa.select(Customer.__table__)).mappings()}  # type: ignore[attr-defined]
    for r in rows("cards"):
        people[r["customer_id"]].cards.append(r)
    for r in rows("orders"):
        people[r["customer_id"]].orders.append(r)
    for r in rows("purchase_stats"):
        people[r["customer_id"]].stats.append(r)
    for r in rows("customer_segments"):
        people[r["customer_id"]].segment = r["segment"]
    accounts = {r["id"]: r for r in rows("loyalty_accounts")}
    for r in accounts.values():
        people[r["customer_id"]].accounts.append(r)
    for r in rows("loyalty_buckets"):
        people[accounts[r["account_id"]]["customer_id"]].buckets.append(
            {**r, "account": accounts[r["account_id"]]})
    for r in rows("customer_dates"):
        people[r["customer_id"]].dates.append(r)
    return list(people.values())


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, str) and len(value) > 10:
        return _aware(datetime.fromisoformat(value))
    return value


def _all(ops: tuple[Op, ...], value: Any) -> bool:
    return all(COMPARE[op](value, bound) for op, bound in ops)


def matches(cond: Condition, p: Person, now: datetime) -> bool:
    """Whether customer `p` is in the audience of `cond` at `now`."""
    if isinstance(cond, All):
        return all(matches(c, p, now) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(matches(c, p, now) for c in cond.items)
    if isinstance(cond, Not):
        return not matches(cond.item, p, now)
    if isinstance(cond, Has):
        if cond.identifier == "card":
            return any(c["status"] == "active" for c in p.cards)
        return p.row[cond.identifier] not in (None, "")
    if isinstance(cond, Tag):
        return cond.name in _json(p.row["tags"])
    if isinstance(cond, Consent):
        consents = _json(p.row["consents"])
        return cond.category != "marketing" or consents.get("marketing", {}).get(
            cond.channel) is True
    if isinstance(cond, Segment):
        return p.segment in cond.names
    if isinstance(cond, Loyalty):
        return _loyalty(cond, p, now)
    if isinstance(cond, Purchases):
        return _purchases(cond, p, now)
    if isinstance(cond, LastPurchase):
        times = [_aware(s["last_purchase_at"]) for s in p.stats if s["last_purchase_at"]]
        last = max(times) if times else None
        for op, value in cond.ops:
            if op == "exists" and (last is not None) != value:
                return False
            cut = now - timedelta(seconds=value) if op != "exists" else now
            if op == "within" and (last is None or last < cut):
                return False
            if op == "older_than" and (last is None or last >= cut):
                return False
        return True
    return _field(cond, p, now)


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _loyalty(cond: Loyalty, p: Person, now: datetime) -> bool:
    live = sum(b["remaining"] for b in p.buckets
               if b["account"]["kind"] == "bonus" and b["account"]["programme"] == cond.programme
               and b["remaining"] > 0 and _aware(b["active_from"]) <= now
               and (b["expires_at"] is None or _aware(b["expires_at"]) > now))
    if not _all(cond.balance, live):
        return False
    return cond.levels is None or any(
        a["kind"] == "qualification" and a["programme"] == cond.programme
        and a["level"] in cond.levels for a in p.accounts)


def _purchases(cond: Purchases, p: Person, now: datetime) -> bool:
    if cond.within_seconds is None:
        stats = [s for s in p.stats if cond.currency in (None, s["currency"])]
        number, amount = sum(s["orders_count"] for s in stats), sum(s["total_spent"]
                                                                   for s in stats)
    else:
        since = now - timedelta(seconds=cond.within_seconds)
        orders = [o for o in p.orders if o["counted"] and _aware(o["placed_at"]) >= since
                  and cond.currency in (None, o["currency"])]
        number, amount = len(orders), sum(o["total"] - o["refunded"] for o in orders)
    return _all(cond.count, number) and _all(cond.sum, amount)


def _through_dates(cond: FieldCond, op: str) -> bool:
    if op in ("month", "day"):
        return True
    if "[]" in cond.path:
        return op != "exists"
    return cond.kind == "json" and cond.date_path is not None and op not in ("exists",
                                                                               "contains")


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _date_row(op: str, value: Any, row: dict[str, Any], now: datetime) -> bool:
    month, day = (int(x) for x in row["month_day"].split("-"))
    held = _day(row["value"])
    if op == "month":
        return month in value
    if op == "day":
        return day in value
    if op in ("older_than", "within"):
        cut = (now - timedelta(seconds=value)).date()
        return held < cut if op == "older_than" else held >= cut
    if op == "in":
        return held in [_day(v) for v in value]
    return COMPARE[op](held, _day(value))


def _field(cond: FieldCond, p: Person, now: datetime) -> bool:
    dated = [(op, v) for op, v in cond.ops if _through_dates(cond, op)]
    if dated and not any(all(_date_row(op, v, row, now) for op, v in dated)
                         for row in p.dates if row["path"] == cond.date_path):
        return False
    for op, value in cond.ops:
        if _through_dates(cond, op):
            continue
        if "[]" in cond.path:
            if any(r["path"] == cond.date_path for r in p.dates) != value:
                return False
        elif cond.kind == "json":
            held: Any = _json(p.row["attributes"])
            for key in cond.keys:
                held = held.get(key) if isinstance(held, dict) else None
            if not _json_op(op, value, held):
                return False
        elif not _column_op(cond, op, value, p.row[cond.path], now):
            return False
    return True


def _same_kind(held: Any, bound: Any) -> bool:
    if isinstance(bound, bool):
        return isinstance(held, bool)
    if isinstance(bound, int | float):
        return isinstance(held, int | float) and not isinstance(held, bool)
    return isinstance(held, str)


def _json_op(op: str, value: Any, held: Any) -> bool:
    if op == "exists":
        return (held is not None) == value
    if op == "contains":
        in_list = isinstance(held, list) and any(_same_kind(e, value) and e == value
                                                 for e in held)
        in_text = isinstance(held, str) and isinstance(value, str) and value in held
        return in_list or in_text
    if op == "in":
        return any(_json_op("eq", v, held) for v in value)
    bound = value.isoformat() if isinstance(value, date | datetime) else value
    return _same_kind(held, bound) and COMPARE[op](held, bound)


def _column_op(cond: FieldCond, op: str, value: Any, held: Any, now: datetime) -> bool:
    if cond.kind == "datetime":
        held = _aware(held)
    if op == "exists":
        present = held is not None and not (cond.kind == "text" and held == "")
        return present == value
    if held is None:
        return False
    if op in ("older_than", "within"):
        cut: Any = now - timedelta(seconds=value)
        if cond.kind == "date":
            cut = cut.date()
        return held < cut if op == "older_than" else held >= cut
    if op == "contains":
        return value in held

    def bound(v: Any) -> Any:
        if cond.kind == "date":
            return _day(v)
        if cond.kind == "datetime" and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        return v

    if op == "in":
        return held in [bound(v) for v in value]
    return bool(COMPARE[op](held, bound(value)))

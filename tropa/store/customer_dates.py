"""`customer_dates`: every date of every customer by month and day, kept with the customers table.

Date triggers look up "whose birthday (or any date attribute) falls on 14 May" through the
index on (path, month_day) instead of reading the base. The rows are derived: an ORM flush
that writes customers refreshes them in the same transaction (profile, attributes, the
`update_customer` step), and bulk Core writes (imports) call `refresh_dates` themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from tropa.store.trigger_models import CustomerDate
from tropa.store.types import UtcDateTime

DATES = CustomerDate.__table__  # type: ignore[attr-defined]
CUSTOMERS = sa.table("customers", sa.column("id", sa.String), sa.column("time_zone", sa.String),
                     sa.column("birthday", sa.Date), sa.column("registered_at", sa.Date),
                     sa.column("created_at", UtcDateTime()), sa.column("attributes", sa.JSON))
CHUNK = 500


def is_date_key(key: str) -> bool:
    """Attribute keys that hold dates (`birthday`, `date`, `*_date`) or date-times (`*_at`)."""
    return key in ("birthday", "date") or key.endswith(("_date", "_at"))


def _zone(name: str | None) -> tuple[str, ZoneInfo]:
    try:
        return str(name or "UTC"), ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return "UTC", ZoneInfo("UTC")


def _as_date(value: Any, zone: ZoneInfo) -> date | None:
    """A date from a date, an aware date-time (its local day) or their ISO text."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) > 10:
            return _as_date(datetime.fromisoformat(text), zone)
        if "." in text:  # the Russian 17.05.1990, as attributes accept it
            return datetime.strptime(text, "%d.%m.%Y").date()  # noqa: DTZ007 - a date
        return date.fromisoformat(text)
    except ValueError:
        return None


def dates_of(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The customer_dates rows of one customer row."""
    zone_name, zone = _zone(row.get("time_zone"))
    out: list[dict[str, Any]] = []

    def add(path: str, value: Any, item: int = 0, data: Any = None) -> None:
        day = _as_date(value, zone)
        if day is not None:
            out.append({"customer_id": row["id"], "path": path, "item": item,
                        "time_zone": zone_name, "month_day": f"{day.month:02d}-{day.day:02d}",
                        "value": day, "item_data": data})

    for name in ("birthday", "created_at", "registered_at"):
        add(f"customer.{name}", row.get(name))
    attributes = row.get("attributes") or {}
    for key, value in attributes.items() if isinstance(attributes, dict) else ():
        if is_date_key(key):
            add(f"customer.attributes.{key}", value)
        elif isinstance(value, list):
            for index, element in enumerate(value):
                if not isinstance(element, dict):
                    continue
                for field, inner in element.items():
                    if is_date_key(field):
                        add(f"customer.attributes.{key}[].{field}", inner, index, element)
    return out


def refresh_dates(conn: sa.Connection, customer_ids: Iterable[str]) -> None:
    """Rebuild the dates of these customers from the customers table (gone ones lose them)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = conn.execute(sa.select(CUSTOMERS).where(CUSTOMERS.c.id.in_(chunk))).mappings()
        fresh = [d for row in rows for d in dates_of(dict(row))]
        conn.execute(DATES.delete().where(DATES.c.customer_id.in_(chunk)))
        if fresh:
            conn.execute(DATES.insert(), fresh)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    """Any flush that wrote customers refreshes their dates in the same transaction."""
    ids = {obj.id for obj in (*session.new, *session.dirty, *session.deleted)
           if getattr(obj, "__tablename__", None) == "customers"}
    if ids:
        refresh_dates(session.connection(), ids)

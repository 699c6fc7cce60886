"""A shop's purchase history from a file: one order a row, recorded as `PUT /v1/orders` does
(same no-op on a repeat, same totals), without raising events: history starts no journeys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from tropa.clock import utcnow
from tropa.customers.attributes import parse_date
from tropa.customers.audit import Actor
from tropa.customers.identifiers import CustomerNotFound, Identifier, IdentifierInvalid, find_id
from tropa.customers.imports.job import BATCH, Report, Summary, _update
from tropa.customers.imports.rows import ID, Problem
from tropa.customers.orders import OrderConflict, OrderData, record_order
from tropa.customers.tabular import (
    Mapping,
    TableUnreadable,
    cell_text,
    not_text,
    open_table,
    show,
)

FIELDS = ("order_id", "customer_id", "external_id", "phone", "email", "card", "placed_at",
          "status", "currency", "total", "refunded", "store", "channel")
IDENTIFIERS = {"customer_id": "id", "external_id": "external_id", "phone": "phone",
               "email": "email", "card": "card"}


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        day = parse_date(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse(number: int, cells: list[Any], columns: list[tuple[int, str, str]],
           formulas: set[int]) -> tuple[str, Identifier, OrderData] | list[Problem]:
    values: dict[str, str] = {}
    problems: list[Problem] = []
    where: dict[str, str] = {}
    for index, header, name in columns:
        text = cell_text(cells[index] if index < len(cells) else None)
        where[name] = header
        if index in formulas:
            problems.append(Problem(number, header, text or "", "the cell holds a formula",
                                    "replace formulas with their values and save again"))
        elif text is not None and not_text(text):
            problems.append(Problem(number, header, show(text), "not UTF-8 text",
                                    "save the file as UTF-8"))
        elif text is not None:
            values[name] = text
    order_id = values.pop("order_id", "")
    if not ID.match(order_id):
        problems.append(Problem(number, where.get("order_id", "order_id"), order_id,
                                "no order id or not a valid one", "give an order_id of up to "
                                "128 letters, digits and . : @ _ -"))
    ident = next(((IDENTIFIERS[k], values.pop(k)) for k in IDENTIFIERS if k in values), None)
    if ident is None:
        problems.append(Problem(number, "", "", "the row names no customer",
                                "give customer_id, external_id, phone, email or card"))
    data: dict[str, Any] = {k: v for k, v in values.items() if k not in IDENTIFIERS}
    attributes = {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith("attributes.")}
    data = {k: v for k, v in data.items() if not k.startswith("attributes.")}
    if "placed_at" in data:
        try:
            data["placed_at"] = _moment(data["placed_at"])
        except ValueError:
            problems.append(Problem(number, where["placed_at"], data["placed_at"],
                                    "not a date or time", "write 2024-05-17T14:30:00+03:00, "
                                    "2024-05-17 or 17.05.2024"))
    if problems:
        return problems
    try:
        order = OrderData.model_validate({**data, "attributes": attributes})
    except ValidationError as exc:
        return [Problem(number, where.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"]
                        else "", str(values.get(str(e["loc"][0]), "")) if e["loc"] else "",
                        e["msg"], "amounts are whole numbers in kopecks (minor units); "
                        "currency like RUB; channel online or offline")
                for e in exc.errors()]
    assert ident is not None
    return order_id, Identifier(type=ident[0], value=ident[1]), order


def import_orders(engine: sa.Engine, path: Path, *, job_id: str, actor: Actor | None = None,
                  mapping: Mapping | None = None, dry_run: bool = False,
                  report_path: Path | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  batch_size: int = BATCH) -> Summary:
    """Import orders from a .csv or .xlsx file."""
    mapping = mapping or Mapping()
    actor = actor or Actor("import", job_id, path.name[:200])
    report = Report(report_path or path.with_name(f"{path.stem}.rejected.csv"))
    _update(engine, job_id, status="running")
    try:
        table = open_table(path, mapping)
    except (TableUnreadable, OSError) as exc:
        _update(engine, job_id, status="failed", error=str(exc)[:2000], finished_at=utcnow())
        raise
    columns: list[tuple[int, str, str]] = []
    for index, header in enumerate(table.header):
        name = mapping.field_of(header)
        if name is None:
            continue
        if name in FIELDS or (name.startswith("attributes.") and name.count(".") == 1):
            columns.append((index, header, name))
        else:
            report.add([Problem(1, header, header, "unknown column; its values are not "
                                "imported", f"rename it to one of {', '.join(FIELDS)} or "
                                "attributes.<name>, or map it with --mapping")])
    seen: dict[str, int] = {}
    done = imported = unchanged = 0
    batch: list[tuple[int, str, Identifier, OrderData]] = []

    def flush() -> None:
        nonlocal imported, unchanged
        problems: list[Problem] = []
        with Session(engine) as session:
            for number, order_id, ident, order in batch:
                try:
                    with session.begin_nested():
                        customer_id = find_id(session, ident)
                        if customer_id is None:
                            raise CustomerNotFound(f"no customer with that {ident.type}")
                        recorded = record_order(session, order_id, order, actor=actor,
                                                customer_id=customer_id, emit=False)
                        if recorded.outcome == "unchanged":
                            unchanged += 1
                        else:
                            imported += 1
                except (CustomerNotFound, IdentifierInvalid, OrderConflict,
                        IntegrityError) as exc:
                    problems.append(Problem(number, "", ident.value, str(exc),
                                            "create the customer first, or fix the identifier"))
            if dry_run:
                session.rollback()
            else:
                session.commit()
        report.add(problems)
        batch.clear()
        _update(engine, job_id, rows_done=done, imported=imported, unchanged=unchanged,
                rejected=report.count)
        if progress is not None:
            progress(done, max(table.total, done))

    for number, cells in table.rows:
        done += 1
        parsed = _parse(number, cells, columns, table.formulas.get(number, set()))
        if isinstance(parsed, list):
            report.add(parsed)
            continue
        order_id, ident, order = parsed
        if order_id in seen:
            report.add([Problem(number, "order_id", order_id, f"order already given in row "
                                f"{seen[order_id]}", "keep one row per order")])
            continue
        seen[order_id] = number
        batch.append((number, order_id, ident, order))
        if len(batch) >= batch_size:
            flush()
    flush()
    written = report.close()
    _update(engine, job_id, status="done", rows_total=done, rows_done=done, imported=imported,
            unchanged=unchanged, rejected=report.count,
            report_path=str(written) if written else None, finished_at=utcnow())
    return Summary(job_id, done, imported, unchanged, report.count, written, dry_run)

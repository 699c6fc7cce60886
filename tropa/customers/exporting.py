"""Exporting customers to CSV or XLSX, streamed row by row, never built in memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tropa.store.models import Customer

HEADER = ["id", "external_id", "first_name", "last_name", "phone", "phone_verified", "email",
          "email_verified", "birthday", "registered_at", "time_zone", "locale", "tags",
          "attributes", "consents", "created_at", "updated_at"]
CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]


def rows(engine: sa.Engine, chunk: int = 2000) -> Iterator[list[Any]]:
    """Every customer as export cells, by id; read in chunks by keyset, not all at once."""
    last = ""
    while True:
        with engine.connect() as conn:
            found = list(conn.execute(sa.select(CUSTOMERS).where(CUSTOMERS.c.id > last)
                                      .order_by(CUSTOMERS.c.id).limit(chunk)).mappings())
        if not found:
            return
        for r in found:
            yield [_cell(name, r[name]) for name in HEADER]
        last = found[-1]["id"]


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "tags":
        return ", ".join(value)
    if name in ("attributes", "consents"):
        return json.dumps(value, ensure_ascii=False) if value else ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def csv_chunks(engine: sa.Engine) -> Iterator[str]:
    """The export as CSV text, a few hundred rows per chunk (for a streamed response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for n, row in enumerate(rows(engine), start=1):
        writer.writerow(row)
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export(engine: sa.Engine, path: Path) -> int:
    """Write every customer to a .csv or .xlsx file; the number of customers written."""
    count = 0
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        book = Workbook(write_only=True)
        sheet = book.create_sheet("customers")
        sheet.append(HEADER)
        for row in rows(engine):
            # XLSX cannot hold control characters; a CSV export keeps them.
            sheet.append([ILLEGAL_CHARACTERS_RE.sub("\ufffd", c) if isinstance(c, str) else c
                          for c in row])
            count += 1
        book.save(path)
        return count
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for row in rows(engine):
            writer.writerow(row)
            count += 1
    return count

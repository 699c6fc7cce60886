"""Reading CSV and XLSX files row by row: header mapping, spreadsheet row numbers, cell text,
cells that are not valid text in the file's encoding, and XLSX cells that hold formulas.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row 2.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_FORMULA = re.compile(rb'<c r="([A-Z]+)(\d+)"[^>]*>\s*<f[\s>/]')
_BAD_TEXT = re.compile("[\udc80-\udcff]")


class TableUnreadable(ValueError):
    """The file cannot be read as a table at all; the message says why and how to fix it."""


@dataclass
class Mapping:
    """How a file's headers map to Tropa's field names, and how to read a CSV."""

    columns: dict[str, str | None] = field(default_factory=dict)
    encoding: str = "utf-8"
    delimiter: str | None = None

    @classmethod
    def load(cls, path: Path | None) -> Mapping:
        """A mapping file: `columns: {Телефон: phone, Заметка: null}`, optional `encoding`
        (`cp1251`) and `delimiter`."""
        if path is None:
            return cls()
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise TableUnreadable(f"{path}: cannot read the mapping file: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("columns", {}), dict):
            raise TableUnreadable(f"{path}: write the mapping as `columns: {{header: field}}`")
        columns = {str(k): (None if v is None else str(v)) for k, v in
                   (raw.get("columns") or {}).items()}
        return cls(columns=columns, encoding=str(raw.get("encoding") or "utf-8"),
                   delimiter=raw.get("delimiter"))

    def field_of(self, header: str) -> str | None:
        """The field a header maps to (itself by default); None to skip the column."""
        return self.columns.get(header, header)


@dataclass
class Table:
    """A file's header and its data rows as (spreadsheet row number, cell values)."""

    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    total: int
    formulas: dict[int, set[int]] = field(default_factory=dict)  # row -> column indexes


def open_table(path: Path, mapping: Mapping | None = None) -> Table:
    """The table in a .csv or .xlsx file."""
    mapping = mapping or Mapping()
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TableUnreadable(f"{path}: no such file")
    if suffix == ".csv":
        return _csv(path, mapping)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx(path)
    raise TableUnreadable(f"{path}: not a .csv or .xlsx file; save the sheet as one of those")


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def _csv(path: Path, mapping: Mapping) -> Table:
    with path.open(encoding=mapping.encoding, errors="surrogateescape", newline="") as f:
        first = f.readline()
    if not first.strip():
        raise TableUnreadable(f"{path}: empty file; the first row must hold the column names")
    delimiter = mapping.delimiter or max((";", ",", "\t"), key=first.count)
    header = next(csv.reader([first], delimiter=delimiter))
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = [h.strip() for h in header]
    total = max(_count_lines(path) - 1, 0)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        # Opened when read, so a table whose rows are read elsewhere leaves no file open.
        with path.open(encoding=mapping.encoding, errors="surrogateescape", newline="") as f:
            f.readline()
            for number, cells in enumerate(csv.reader(f, delimiter=delimiter), start=2):
                if any(c.strip() for c in cells):
                    yield number, cells

    return Table(header=header, rows=rows(), total=total)


def _xlsx(path: Path) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheet = book.get_sheet_by_index(0)
    except (CalamineError, OSError, ValueError) as exc:
        raise TableUnreadable(f"{path}: not a readable XLSX workbook: {exc}") from exc
    it = iter(sheet.iter_rows())
    try:
        header = [cell_text(c) or "" for c in next(it)]
    except StopIteration:
        raise TableUnreadable(f"{path}: the first sheet is empty; its first row must hold "
                              "the column names") from None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in enumerate(it, start=2):
            if any(cell_text(c) for c in cells):
                yield number, list(cells)

    return Table(header=header, rows=rows(), total=max(sheet.height - 1, 0),
                 formulas=formula_cells(path))


def _column_index(letters: bytes) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + (ch - 64)
    return index - 1


def formula_cells(path: Path) -> dict[int, set[int]]:
    """Cells of the first sheet that hold a formula, by row number and column index."""
    found: dict[int, set[int]] = {}
    with zipfile.ZipFile(path) as z:
        sheet = _first_sheet_path(z)
        tail = b""
        with z.open(sheet) as f:
            while chunk := f.read(1 << 20):
                data = tail + chunk
                for m in _FORMULA.finditer(data):
                    found.setdefault(int(m.group(2)), set()).add(_column_index(m.group(1)))
                tail = data[-300:]
    return found


def _first_sheet_path(z: zipfile.ZipFile) -> str:
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    book = ElementTree.fromstring(z.read("xl/workbook.xml"))
    first = book.find(f"{ns}sheets/{ns}sheet")
    rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    if first is not None:
        rid = first.get(_REL_NS)
        for rel in rels:
            if rel.get("Id") == rid:
                target = rel.get("Target", "")
                return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return "xl/worksheets/sheet1.xml"


def cell_text(value: Any) -> str | None:
    """A cell as text: None when empty; whole numbers without `.0`; dates as ISO."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None


def not_text(value: str) -> bool:
    """Whether a CSV cell held bytes that are not text in the file's encoding."""
    return bool(_BAD_TEXT.search(value))


def show(value: str) -> str:
    """A cell for the report: bytes that were not text shown as \\xNN."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
        if not_text(value) else value

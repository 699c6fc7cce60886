"""One spreadsheet row of customers checked and turned into the fields Tropa stores.

Every problem of a row is reported with its place (row as a spreadsheet shows it, column),
the value, the reason and how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tropa.contacts import ContactInvalid
from tropa.customers.attributes import parse_date
from tropa.customers.imports import fastcontacts
from tropa.customers.tabular import Mapping, Table, cell_text, not_text, show

ID = re.compile(r"^[\w.:@-]{1,128}$")
BARCODE = re.compile(r"^[0-9A-Za-z-]{1,64}$")
LOCALE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TEXT_LIMITS = {"external_id": 128, "first_name": 200, "last_name": 200, "card_track": 200}
FIELDS = ("id", "external_id", "first_name", "last_name", "phone", "phone_verified", "email",
          "email_verified", "time_zone", "locale", "birthday", "registered_at", "tags", "card",
          "card_track")
TRUE = {"1", "true", "yes", "y", "да", "+"}
FALSE = {"0", "false", "no", "n", "нет", "-"}
_zones: dict[str, bool] = {}


@dataclass
class Problem:
    """One rejected cell (or a whole row when `column` is empty)."""

    row: int
    column: str
    value: str
    reason: str
    fix: str


@dataclass
class Column:
    """A file column and the field it feeds."""

    index: int
    header: str
    field: str


@dataclass
class Row:
    """A valid row: customer fields, tags to add, attributes, consents, a card."""

    number: int
    id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, dict[str, bool]] = field(default_factory=dict)
    card: str | None = None
    track: str | None = None
    _identifiers: list[tuple[str, str]] | None = field(default=None, repr=False)

    def identifiers(self) -> list[tuple[str, str]]:
        """The identifiers this row names, each unique across customers (computed once)."""
        if self._identifiers is None:
            out = [(k, self.fields[k]) for k in ("external_id", "phone", "email") if
                   self.fields.get(k)]
            if self.id:
                out.insert(0, ("id", self.id))
            out += [(k, v) for k, v in (("card", self.card), ("card_track", self.track)) if v]
            self._identifiers = out
        return self._identifiers


def columns_of(table: Table, mapping: Mapping) -> tuple[list[Column], list[Problem]]:
    """The columns Tropa reads, and a row-1 problem for each column it does not know."""
    columns: list[Column] = []
    problems: list[Problem] = []
    for index, header in enumerate(table.header):
        name = mapping.field_of(header)
        if name is None or (not header and name == ""):
            continue
        if name in FIELDS or _prefixed(name):
            columns.append(Column(index, header, name))
        else:
            problems.append(Problem(1, header, header, "unknown column; its values are not "
                                    "imported", "rename it to a field name (id, external_id, "
                                    "first_name, last_name, phone, email, birthday, "
                                    "registered_at, time_zone, locale, tags, card, card_track, "
                                    "attributes.<name>, consents.<category>.<channel>) or "
                                    "map it with --mapping"))
    return columns, problems


def _prefixed(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "attributes":
        return len(parts) == 2 and bool(ATTRIBUTE.match(parts[1]))
    return (parts[0] == "consents" and len(parts) == 3 and parts[1] in ("marketing", "service")
            and bool(CHANNEL.match(parts[2])))


class _Bad(ValueError):
    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


DATE_FIX = "write the date as 1990-05-17 or 17.05.1990"


def _bool(text: str) -> bool:
    low = text.lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise _Bad(f"{text!r} is not yes or no", "write true or false (1/0, yes/no, да/нет)")


def _value(name: str, text: str) -> Any:
    if name == "id":
        if not ID.match(text):
            raise _Bad("not a customer id", "use up to 128 letters, digits and . : @ _ -")
        return text
    if name in TEXT_LIMITS:
        if len(text) > TEXT_LIMITS[name]:
            raise _Bad(f"longer than {TEXT_LIMITS[name]} characters", "shorten it")
        return text
    if name == "phone":
        try:
            return fastcontacts.phone(text)
        except ContactInvalid as exc:
            raise _Bad(f"not a phone number ({exc})", "write it with the country code, "
                       "e.g. +7 916 123-45-67") from exc
    if name == "email":
        try:
            return fastcontacts.email(text)
        except ContactInvalid as exc:
            raise _Bad(f"not an email address ({exc})", "write it as name@example.com") \
                from exc
    if name in ("birthday", "registered_at") or name.endswith("_date"):
        try:
            return parse_date(text)
        except ValueError as exc:
            raise _Bad(str(exc).split(";")[0], DATE_FIX) from exc
    if name == "time_zone":
        if text not in _zones:
            try:
                ZoneInfo(text)
                _zones[text] = True
            except (ZoneInfoNotFoundError, ValueError):
                _zones[text] = False
        if not _zones[text]:
            raise _Bad("not an IANA time zone", "write it like Europe/Moscow")
        return text
    if name == "locale":
        if not LOCALE.match(text):
            raise _Bad("not a locale", "write it like ru or en-GB")
        return text
    if name in ("phone_verified", "email_verified"):
        return _bool(text)
    if name == "card":
        if not BARCODE.match(text):
            raise _Bad("not a card barcode", "use up to 64 letters, digits and -")
        return text
    return text


def parse_row(number: int, cells: list[Any], columns: list[Column],
              formulas: set[int]) -> Row | list[Problem]:
    """The row's fields, or every problem found in it."""
    row = Row(number=number, id=None)
    problems: list[Problem] = []
    for col in columns:
        raw = cells[col.index] if col.index < len(cells) else None
        text = cell_text(raw)
        if col.index in formulas:
            problems.append(Problem(number, col.header, text or "", "the cell holds a formula",
                                    "replace formulas with their values (copy, paste "
                                    "special, values only) and save the file again"))
            continue
        if text is None:
            continue
        if not_text(text):
            problems.append(Problem(number, col.header, show(text), "not UTF-8 text",
                                    "save the file as UTF-8 (CSV UTF-8 in Excel), or give "
                                    "`encoding: cp1251` in the mapping file"))
            continue
        try:
            _put(row, col.field, text)
        except _Bad as bad:
            problems.append(Problem(number, col.header, text, bad.reason, bad.fix))
    if problems:
        return problems
    if not row.identifiers():
        return [Problem(number, "", "", "the row names no customer", "give an id, external_id, "
                        "phone, email or card")]
    return row


def _put(row: Row, name: str, text: str) -> None:
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        row.attributes[key] = _value(key, text) if key.endswith("_date") else text
        if key.endswith("_date"):
            row.attributes[key] = row.attributes[key].isoformat()
    elif name.startswith("consents."):
        _, category, channel = name.split(".")
        row.consents.setdefault(category, {})[channel] = _bool(text)
    elif name == "tags":
        tags = [t.strip() for t in re.split(r"[,;|]", text) if t.strip()]
        if any(len(t) > 100 for t in tags):
            raise _Bad("a tag is longer than 100 characters", "shorten the tag")
        row.tags = list(dict.fromkeys(tags))
    elif name == "card":
        row.card = _value(name, text)
    elif name == "card_track":
        row.track = _value(name, text)
    elif name == "id":
        row.id = _value(name, text)
    else:
        row.fields[name] = _value(name, text)

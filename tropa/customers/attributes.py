"""Custom attributes: dates in any key named `*_date`, `birthday` or `*_at`, composite lists.

Questionnaire data such as `children: [{name, birth_date, gender}]` or `cars: [...]` is kept
as lists of objects. Every value under a date key must be a date (ISO `1990-05-17` or the
Russian `17.05.1990`; stored as ISO), every `*_at` an ISO date-time with a zone; a bad one
names its path, `attributes.children[1].birth_date`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

MAX_LIST = 100


class AttributeInvalid(ValueError):
    """An attribute value that does not fit its key; `loc` is the path inside the body."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        self.loc = loc
        super().__init__(f"{render_path(loc)}: {message}")
        self.message = message


def render_path(loc: list[str | int]) -> str:
    """`["attributes", "children", 1, "birth_date"]` as `attributes.children[1].birth_date`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RU = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


def parse_date(value: str) -> date:
    """A date from ISO `1990-05-17` or `17.05.1990`; ValueError otherwise."""
    text = value.strip()
    iso, ru = _ISO.match(text), _RU.match(text)
    try:
        if iso is not None:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if ru is not None:
            return date(int(ru[3]), int(ru[2]), int(ru[1]))
    except ValueError:
        pass
    raise ValueError(f"{value!r} is not a date; write it as 1990-05-17 or 17.05.1990")


def _is_date_key(key: str) -> bool:
    return key == "birthday" or key.endswith("_date") or key == "date"


def _clean(value: Any, loc: list[str | int]) -> Any:
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if isinstance(value, dict):
        return {k: _clean(v, [*loc, k]) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise AttributeInvalid(loc, f"holds {len(value)} items; at most {MAX_LIST}")
        return [_clean(v, [*loc, i]) for i, v in enumerate(value)]
    if value is None or not isinstance(loc[-1], str):
        return value
    if _is_date_key(key):
        if not isinstance(value, str):
            raise AttributeInvalid(loc, "must be a date written as 1990-05-17 or 17.05.1990")
        try:
            return parse_date(value).isoformat()
        except ValueError as exc:
            raise AttributeInvalid(loc, str(exc)) from exc
    if key.endswith("_at"):
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise AttributeInvalid(loc, f"{value!r} is not a date-time with a zone; write "
                                   "2026-05-17T10:00:00+03:00")
    return value


def clean_attributes(values: dict[str, Any], prefix: str = "attributes") -> dict[str, Any]:
    """Attributes with dates checked and stored as ISO; AttributeInvalid names the bad path."""
    return {k: _clean(v, [prefix, k]) for k, v in values.items()}

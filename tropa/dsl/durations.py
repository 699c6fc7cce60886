"""Durations as marketers write them: `30s`, `15m`, `4h`, `3d`, `2w`, or combined: `1d12h`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_FORM = "a number and a unit: 30s, 15m, 4h, 3d, 2w (combine as 1d12h)"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raise ValueError that explains the accepted form."""
    compact = text.strip().replace(" ", "")
    if not _PATTERN.match(compact):
        raise ValueError(f"'{text}' is not a duration; write {DURATION_FORM}")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"'{text}' is zero; a duration must be positive")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"'{text}' is too long; a duration must be under 999999999 days") \
            from None


def format_duration(value: timedelta) -> str:
    """The shortest spelling of a duration in the language's own units."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _validate(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} has no unit; write {DURATION_FORM}")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, {DURATION_FORM}")
    parse_duration(value)
    return value.strip()


Duration = Annotated[
    str,
    BeforeValidator(_validate),
    PlainSerializer(lambda v: v, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(\d+[smhdw])+$",
            "description": f"A duration: {DURATION_FORM}",
            "examples": ["30m", "4h", "3d"],
        }
    ),
]
"""A duration kept as its source text in models and Plans; parse with `parse_duration`."""

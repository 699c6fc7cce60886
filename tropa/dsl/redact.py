"""Error texts about data that never quote the data.

A template fails on a customer's or an event's values; the failure travels into workflow
history, the Web UI and logs, where personal data must not go. These helpers describe a
value by its kind and keep, of a library's message, only what the template itself says.
"""

from __future__ import annotations

import builtins
import re
import traceback
from datetime import date, datetime
from typing import Any

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d[\d.,:+-]{3,}\d\b")
_TYPE_REPR = re.compile(r"^[\w.]+ object$")
HIDDEN = "'…'"


def kind_of(value: Any) -> str:
    """What kind of value this is, in words, without the value: "a text", "nothing"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty text" if not value else "a text"
    if isinstance(value, datetime | date):
        return "a date"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a value of type {type(value).__name__}"


def scrub(message: str, source: str) -> str:
    """`message` with every quoted fragment that the template does not contain hidden.

    Jinja names what a template used ('customer', 'dict object', an attribute); a quoted
    fragment (or a long number) that is not in the template's text, a type description or
    a builtin name came from the data (a dynamic key, a value) and is replaced by '…'.
    """
    def keep(match: re.Match[str]) -> str:
        found = match.group(0)
        inner = found[1:-1] if found[0] in "'\"" else found
        if (inner and inner in source) or _TYPE_REPR.match(inner) or hasattr(builtins, inner):
            return match.group(0)
        return HIDDEN

    return _QUOTED.sub(keep, message)


def template_line(exc: BaseException) -> int | None:
    """The line of the template that raised `exc` (Jinja maps its frames to `<template>`)."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
             if f.filename == "<template>"]
    return lines[-1] if lines else None


def data_failure(what: str, exc: BaseException, *, lines: bool = True) -> str:
    """`<what> failed on this data: <ExceptionType> at line N; …`, never the exception text,
    which may quote the value (`invalid literal for int(): 'olga@example.com'`)."""
    line = template_line(exc) if lines else None
    where = f" at line {line} of the {what}" if line is not None else ""
    return (f"{what} failed on this data: {type(exc).__name__}{where}; a value is not of "
            "the kind the expression needs (the values are not shown, they may be "
            "personal data)")

"""JSON reads that mean the same on PostgreSQL and SQLite.

Each element yields a value only when the JSON holds that kind of value (text, number,
true/false), NULL otherwise, so a city stored as a number or a price stored as text never
breaks a cast: it simply does not match. Keys are checked by the parser (letters, digits, _)
and so can stand in the SQL text as literals.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement

What = Literal["text", "number", "bool", "present", "array_has", "substring"]
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JsonRead(ColumnElement[Any]):
    """One read of `column` at `keys`; see the module docstring."""

    inherit_cache = False  # the keys are part of the SQL text

    def __init__(self, what: What, column: ColumnElement[Any], keys: tuple[str, ...] = (),
                 value: Any = None) -> None:
        if not all(_KEY.match(k) for k in keys):
            raise ValueError(f"unsafe JSON key in {keys!r}")
        self.what = what
        self.column = column
        self.keys = keys
        self.value = value
        types: dict[str, sa.types.TypeEngine[Any]] = {
            "text": sa.String(), "number": sa.Numeric(), "bool": sa.String()}
        self.type = types.get(what, sa.Boolean())

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


def json_text(column: ColumnElement[Any], keys: tuple[str, ...]) -> ColumnElement[str]:
    """The string at `keys`, or NULL."""
    return JsonRead("text", column, keys)


def json_number(column: ColumnElement[Any], keys: tuple[str, ...]) -> ColumnElement[Any]:
    """The number at `keys`, or NULL."""
    return JsonRead("number", column, keys)


def json_bool(column: ColumnElement[Any], keys: tuple[str, ...]) -> ColumnElement[str]:
    """'true' or 'false' at `keys`, or NULL."""
    return JsonRead("bool", column, keys)


def json_present(column: ColumnElement[Any], keys: tuple[str, ...]) -> ColumnElement[bool]:
    """Whether `keys` holds a value other than null."""
    return JsonRead("present", column, keys)


def json_array_has(column: ColumnElement[Any], keys: tuple[str, ...],
                   value: str | int | float | bool) -> ColumnElement[bool]:
    """Whether `keys` holds an array with `value` among its elements."""
    return JsonRead("array_has", column, keys, value)


def substring(column: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    """Whether text `column` contains `value`, case-sensitively on both databases (LIKE is
    case-insensitive on SQLite)."""
    return JsonRead("substring", column, (), value)


def _bind(compiler: SQLCompiler, value: Any, **kw: Any) -> str:
    return str(compiler.process(sa.bindparam(None, value, unique=True), **kw))


@compiles(JsonRead)
def _sqlite(element: JsonRead, compiler: SQLCompiler, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    if element.what == "substring":
        return f"(instr({col}, {_bind(compiler, element.value, **kw)}) > 0)"
    path = "'$" + "".join(f".{k}" for k in element.keys) + "'"
    kind = f"json_type({col}, {path})"
    read = f"json_extract({col}, {path})"
    if element.what == "text":
        return f"(CASE WHEN {kind} = 'text' THEN {read} END)"
    if element.what == "number":
        return f"(CASE WHEN {kind} IN ('integer', 'real') THEN {read} END)"
    if element.what == "bool":
        return f"(CASE WHEN {kind} IN ('true', 'false') THEN {kind} END)"
    if element.what == "present":
        return f"(COALESCE({kind}, 'null') <> 'null')"
    value = element.value
    if isinstance(value, bool):
        match = f"je.type = '{'true' if value else 'false'}'"
    elif isinstance(value, int | float):
        match = f"je.type IN ('integer', 'real') AND je.value = {_bind(compiler, value, **kw)}"
    else:
        match = f"je.type = 'text' AND je.value = {_bind(compiler, value, **kw)}"
    return (f"({kind} = 'array' AND EXISTS (SELECT 1 FROM json_each({col}, {path}) AS je "
            f"WHERE {match}))")


@compiles(JsonRead, "postgresql")
def _postgresql(element: JsonRead, compiler: SQLCompiler, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    if element.what == "substring":
        return f"(strpos({col}, {_bind(compiler, element.value, **kw)}) > 0)"
    path = "'{" + ",".join(element.keys) + "}'"
    node = f"({col} #> {path})"
    kind = f"json_typeof({node})"
    read = f"({col} #>> {path})"
    if element.what == "text":
        return f"(CASE WHEN {kind} = 'string' THEN {read} END)"
    if element.what == "number":
        return f"(CASE WHEN {kind} = 'number' THEN CAST({read} AS NUMERIC) END)"
    if element.what == "bool":
        return f"(CASE WHEN {kind} = 'boolean' THEN {read} END)"
    if element.what == "present":
        return f"(COALESCE({kind}, 'null') <> 'null')"
    wanted = _bind(compiler, json.dumps([element.value]), **kw)
    return f"({kind} = 'array' AND CAST({node} AS JSONB) @> CAST({wanted} AS JSONB))"

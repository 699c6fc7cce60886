"""Many rows as one statement parameter, on PostgreSQL and SQLite.

Set-based writes (`INSERT ... SELECT`, `DELETE ... WHERE id IN`) take their rows from a few
parameters instead of one bound value per cell: on PostgreSQL each column is one string that
`string_to_array` splits on a control character, on SQLite the rows are one JSON array that
`json_each` walks. Ten thousand rows are then one statement, with no per-row parameter
processing in Python and no limit on the number of variables. (A list bound as a PostgreSQL
array would do too, but psycopg quotes its text elements one regex at a time, which costs
more than the statement.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# Identifiers, segment names and event types never hold control characters; a value that
# does is bound as an array instead.
SEP = "\x1f"
NULL = "\x1e"


def rows(conn: sa.Connection, names: Sequence[str],
         values: Sequence[Sequence[str | None]]) -> sa.Subquery:
    """A subquery with columns `names` over `values` (non-empty strings or None)."""
    if conn.dialect.name == "postgresql":
        columns = list(zip(*values, strict=True)) if values else [() for _ in names]
        unnested = sa.func.unnest(*(_array(column) for column in columns)) \
            .table_valued(*names).render_derived()
        return sa.select(*(unnested.c[n] for n in names)).subquery()
    each = sa.func.json_each(sa.bindparam(None, json.dumps([list(v) for v in values]),
                                          type_=sa.String)).table_valued("value")
    return sa.select(*(sa.func.json_extract(each.c.value, f"$[{i}]").label(n)
                       for i, n in enumerate(names))).subquery()


def among(conn: sa.Connection, column: sa.ColumnElement[Any],
          ids: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN ids` as one parameter: an array on PostgreSQL, a JSON array on SQLite."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(_array(ids))
    each = sa.func.json_each(sa.bindparam(None, json.dumps(list(ids)),
                                          type_=sa.String)).table_valued("value")
    return column.in_(sa.select(each.c.value))


def json_object(conn: sa.Connection, *pairs: tuple[str, sa.ColumnElement[Any]]
                ) -> sa.ColumnElement[Any]:
    """A JSON object built in the database, for a JSON column."""
    args = [x for key, value in pairs for x in (sa.literal(key, sa.String), value)]
    if conn.dialect.name == "postgresql":
        return sa.func.json_build_object(*args)
    return sa.func.json_object(*args)


def json_text(conn: sa.Connection, text: str) -> sa.ColumnElement[Any]:
    """Constant JSON text as a value of a JSON column."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.literal(text, sa.String), postgresql.JSON)
    return sa.literal(text, sa.String)


def _array(values: Sequence[str | None]) -> sa.ColumnElement[Any]:
    if not values:
        return sa.cast(sa.literal("{}", sa.Text), postgresql.ARRAY(sa.Text))
    cells = [NULL if v is None else v for v in values]
    joined = SEP.join(cells)
    # Counting is cheaper than looking into each value: a separator, a NULL marker or an
    # empty string inside a value would split or shift the cells.
    if (joined.count(SEP) != len(cells) - 1 or joined.count(NULL) != cells.count(NULL)
            or "" in cells):
        return sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.Text))
    return sa.func.string_to_array(sa.bindparam(None, joined, type_=sa.Text),
                                   sa.literal(SEP, sa.Text), sa.literal(NULL, sa.Text),
                                   type_=postgresql.ARRAY(sa.Text))

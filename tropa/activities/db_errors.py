"""Database errors leave activities without the statement's values.

A failed INSERT of a message row carries the recipient's phone and the rendered text in
its parameters, and PostgreSQL's own text may quote a value (`Key (phone)=(+7...)`). An
activity's error becomes the run's history, the Web UI's pending-activity view and the
worker's log line, so every activity's database error is replaced by a description that
names the error's class, SQLSTATE, constraint, table and column, never a value. Retries
are unchanged: the replacement is retryable as the original was.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

_DRIVER_ERRORS = (sa.exc.SQLAlchemyError, sqlite3.Error, psycopg.Error)


def describe(exc: BaseException) -> str:
    """What went wrong in the database, in names only: class, SQLSTATE, schema objects."""
    orig = getattr(exc, "orig", None) if isinstance(exc, sa.exc.StatementError) else exc
    parts = [type(exc).__name__]
    if orig is not None and orig is not exc:
        parts.append(type(orig).__name__)
    if isinstance(orig, psycopg.Error):
        if orig.sqlstate:
            parts.append(f"sqlstate {orig.sqlstate}")
        diag = orig.diag
        for label, name in (("constraint", diag.constraint_name), ("table", diag.table_name),
                            ("column", diag.column_name)):
            if name:
                parts.append(f"{label} {name}")
    elif isinstance(orig, sqlite3.Error) and getattr(orig, "sqlite_errorname", None):
        parts.append(str(orig.sqlite_errorname))
    return ", ".join(parts)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except _DRIVER_ERRORS as exc:
            name = activity.info().activity_type
            # `from None`: the original, with its values, must not travel as the cause.
            raise ApplicationError(
                f"database error in {name}: {describe(exc)} (the statement's values are "
                "not shown; see the database's own log)",
                type=f"DatabaseError.{type(exc).__name__}") from None


class DatabaseErrorsWithoutValues(Interceptor):
    """Worker interceptor: activities' database errors are reported without values."""

    def intercept_activity(self, next: ActivityInboundInterceptor
                           ) -> ActivityInboundInterceptor:
        """Wrap every activity of the worker."""
        return _Inbound(next)

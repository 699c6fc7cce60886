"""Local activities the interpreter uses to read the customer without copying it into history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.activities.customer_context import customer_view, load_customer
from tropa.dsl.expressions import ExpressionError, evaluate
from tropa.store.db import session_scope
from tropa.store.models import ActiveRun
from tropa.workflows.inputs import EvaluateInput, NextLocalTimeInput


def customer_zone(name: str) -> ZoneInfo:
    """The customer's IANA zone; a bad name is a data error, not a transient one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(f"unknown time zone {name!r}; use an IANA name like "
                               "Europe/Moscow", type="BadTimeZone", non_retryable=True) from exc


def next_local(after: datetime, at: str, zone: ZoneInfo) -> datetime:
    """The first moment at local `at` (HH:MM) that is not before `after`."""
    hour, minute = (int(p) for p in at.split(":"))
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute),
                                     tzinfo=zone)
    return candidate


def interpreter_activities(engine: sa.Engine) -> list[Callable[..., Any]]:
    """The local activities JourneyRun calls, bound to the database."""

    @activity.defn(name="tropa.evaluate")
    def evaluate_condition(inp: EvaluateInput) -> bool:
        with session_scope(engine) as session:
            customer = customer_view(load_customer(session, inp.customer_id))
        try:
            return evaluate(inp.expression, {**inp.context, "customer": customer})
        except ExpressionError as exc:
            raise ApplicationError(str(exc), type="ExpressionRefused", non_retryable=True) from exc

    @activity.defn(name="tropa.next_local_time")
    def next_local_time(inp: NextLocalTimeInput) -> datetime:
        with session_scope(engine) as session:
            zone_name = load_customer(session, inp.customer_id).time_zone
        return next_local(inp.after, inp.at, customer_zone(zone_name))

    @activity.defn(name="tropa.forget_run")
    def forget_run(workflow_id: str) -> None:
        """A keyed or parallel run has ended: the router no longer signals it."""
        with session_scope(engine) as session:
            row = session.get(ActiveRun, workflow_id)
            if row is not None:
                session.delete(row)

    return [evaluate_condition, next_local_time, forget_run]

"""Local activities the interpreter uses to read the customer without copying it into history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.activities.customer_context import customer_view, customer_zone, load_customer
from tropa.dsl.expressions import ExpressionError, evaluate
from tropa.loyalty.template_view import with_loyalty
from tropa.settings import Settings, get_settings
from tropa.store.db import session_scope
from tropa.workflows.inputs import EvaluateInput, NextLocalTimeInput


def next_local(after: datetime, at: str, zone: ZoneInfo) -> datetime:
    """The first moment at local `at` (HH:MM) that is not before `after`."""
    hour, minute = (int(p) for p in at.split(":"))
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute),
                                     tzinfo=zone)
    return candidate


def interpreter_activities(engine: sa.Engine,
                           settings: Settings | None = None) -> list[Callable[..., Any]]:
    """The local activities JourneyRun calls, bound to the database (and the settings that
    choose the loyalty platform conditions read `customer.loyalty` from)."""
    loyalty = (settings or get_settings()).loyalty

    @activity.defn(name="tropa.evaluate")
    def evaluate_condition(inp: EvaluateInput) -> bool:
        with session_scope(engine) as session:
            customer = customer_view(load_customer(session, inp.customer_id))
        # `customer.loyalty` as of the run's clock, read only if the condition uses it.
        customer = with_loyalty(customer, engine, loyalty,
                                activity.info().current_attempt_scheduled_time)
        try:
            return evaluate(inp.expression, {**inp.context, "customer": customer})
        except ExpressionError as exc:
            raise ApplicationError(str(exc), type="ExpressionRefused", non_retryable=True) from exc

    @activity.defn(name="tropa.next_local_time")
    def next_local_time(inp: NextLocalTimeInput) -> datetime:
        with session_scope(engine) as session:
            zone_name = load_customer(session, inp.customer_id).time_zone
        return next_local(inp.after, inp.at, customer_zone(zone_name))

    return [evaluate_condition, next_local_time]

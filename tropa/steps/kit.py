"""Helpers for activity steps, built-in or from a plugin: templates and HTTP error sorting.

A plugin should need nothing of Tropa beyond `tropa.steps.registry` (to declare its step),
`tropa.dsl.plan` (`StepCall`, `StepResult`, `ActivityCall`, `RetrySpec`) and this module.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.exceptions import ApplicationError

from tropa.activities.customer_context import customer_view, load_customer
from tropa.dsl.expressions import ExpressionError, render
from tropa.dsl.plan import StepCall
from tropa.loyalty.template_view import with_loyalty
from tropa.settings import get_settings
from tropa.store.db import session_scope


def template_context(engine: sa.Engine, call: StepCall) -> dict[str, Any]:
    """What a template of this step sees: customer, event, steps and journey.

    The customer is read here, inside the activity, so personal data never enters the
    workflow's history.
    """
    with session_scope(engine) as session:
        customer = customer_view(load_customer(session, call.run.customer_id))
    return {**call.context,
            "customer": with_loyalty(customer, engine, get_settings().loyalty)}


def render_param(source: str, context: dict[str, Any], *, field: str) -> str:
    """Render one template parameter; a template that cannot render fails the step finally."""
    try:
        return render(source, context)
    except ExpressionError as exc:
        # Retrying cannot fix a template that lacks a value; fail the step with the reason.
        raise ApplicationError(f"`{field}`: {exc}", type="TemplateFailed",
                               non_retryable=True) from exc


def raise_for_http(response: httpx.Response, *, service: str) -> None:
    """Sort an HTTP answer: 5xx and 429 retry (raise a plain error); other 4xx are final.

    The error names the status only: the body is the other system's and may echo personal
    data, and the error text goes into the run's history and the worker's log.
    """
    if response.status_code < 400:
        return
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = "unknown status"
    summary = f"{service} answered {response.status_code} {phrase}"
    if response.status_code >= 500 or response.status_code == 429:
        raise RuntimeError(summary)
    raise ApplicationError(summary, type=f"{service}Rejected", non_retryable=True)

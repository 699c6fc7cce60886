"""The `update_customer` step: add or remove tags and set attributes, once per run and step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import Field, model_validator
from sqlalchemy.exc import IntegrityError
from temporalio import activity

from tropa.activities.customer_context import load_customer
from tropa.clock import utcnow
from tropa.customers.audit import Actor, acting
from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.steps.control import Params
from tropa.steps.registry import StepType, WorkerDeps
from tropa.store.customer_lock import lock_customer_for_update
from tropa.store.db import session_scope
from tropa.store.models import SideEffect


class UpdateCustomerParams(Params):
    add_tags: list[str] = Field(default_factory=list, description="Tags to add",
                                examples=[["cart-abandoner"]])
    remove_tags: list[str] = Field(default_factory=list, description="Tags to remove")
    set: dict[str, Any] = Field(default_factory=dict, description="Attributes to set",
                                examples=[{"last_campaign": "winter"}])

    @model_validator(mode="after")
    def _something(self) -> UpdateCustomerParams:
        if not (self.add_tags or self.remove_tags or self.set):
            raise ValueError("give at least one of `add_tags`, `remove_tags` or `set`")
        return self


def apply_update(engine: sa.Engine, call: StepCall) -> StepResult:
    """Apply the update and record its idempotency key in the same transaction."""
    params = UpdateCustomerParams.model_validate(call.params)
    journey = Actor("journey", f"{call.run.workflow_id}#{call.step_id}", call.run.journey)
    try:
        with acting(journey), session_scope(engine) as session:
            # Locked first: concurrent runs updating one customer never lose a change.
            lock_customer_for_update(session, call.run.customer_id)
            done = session.get(SideEffect, call.idempotency_key)
            if done is not None:
                return StepResult(outcome="updated", detail="already applied", data=done.result)
            customer = load_customer(session, call.run.customer_id)
            tags = [t for t in customer.tags if t not in params.remove_tags]
            tags += [t for t in params.add_tags if t not in tags]
            customer.tags = tags
            customer.attributes = {**customer.attributes, **params.set}
            customer.updated_at = utcnow()
            result = {"tags": tags, "set": sorted(params.set)}
            session.add(customer)
            session.add(SideEffect(idempotency_key=call.idempotency_key, kind="update_customer",
                                   customer_id=customer.id, result=result))
    except IntegrityError:
        # A concurrent attempt of the same step won the race; its update stands.
        return StepResult(outcome="updated", detail="already applied")
    return StepResult(outcome="updated", data=result)


def update_customer_activity(deps: WorkerDeps) -> Callable[[StepCall], StepResult]:
    """The activity performing `update_customer`."""
    engine = deps.engine

    @activity.defn(name="tropa.update_customer")
    def update_customer(call: StepCall) -> StepResult:
        return apply_update(engine, call)

    return update_customer


STEP = StepType(
    name="update_customer",
    params=UpdateCustomerParams,
    kind="activity",
    label="Update customer",
    description="Add or remove tags and set attributes on the customer",
    call=ActivityCall(
        activity="tropa.update_customer",
        start_to_close_seconds=30,
        # Database work only: an hour of retries at most, then the run fails with the step
        # and the reason in its status (never a run retrying for ever in silence).
        schedule_to_close_seconds=3600,
        retry=RetrySpec(maximum_interval_seconds=60, maximum_attempts=0),
    ),
    activity=update_customer_activity,
    ui={"icon": "user-edit", "fields": {"add_tags": {"widget": "tags"},
                                        "remove_tags": {"widget": "tags"},
                                        "set": {"widget": "key-value"}}},
    examples=({"update_customer": {"add_tags": ["vip"]}},),
)

"""Loyalty steps: `accrue_bonus`, `write_off_bonus`, `issue_coupon`, through the platform.

The idempotency key is the run and the step, so a worker killed mid-accrual and restarted
accrues once. A refusal by a rule (the welcome limit, a short balance, a spent series) is a
final outcome of the step, `refused` with the reason, not a failure of the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tropa.customers.identifiers import CustomerNotFound, Identifier
from tropa.dsl.durations import Duration, parse_duration
from tropa.dsl.plan import ActivityCall, RetrySpec, StepCall, StepResult
from tropa.errors import LoyaltyError, LoyaltyNotFound, LoyaltyRefused, Overdraw
from tropa.loyalty.events import level_event
from tropa.loyalty.models import LevelChange, OperationResult, Source
from tropa.loyalty.platform import AccrueRequest, WriteOffRequest, percent_of
from tropa.loyalty.programme import Programme
from tropa.loyalty.template_view import platform_for
from tropa.steps.control import Params
from tropa.steps.registry import StepType, WorkerDeps

RETRY = RetrySpec(maximum_interval_seconds=60, maximum_attempts=0,
                  non_retryable_error_types=["LoyaltyInvalid", "LoyaltyNotFound"])


class AccrueBonusParams(Params):
    amount: int | None = Field(default=None, gt=0, le=10**12, description="Points to accrue",
                               examples=[500])
    percent_of_order: Decimal | None = Field(
        default=None, gt=0, le=100, description="Percent of the trigger order's total "
        "(`event.data.total` or `event.data.order.total`), rounded down", examples=[5],
        # The run must keep these event fields although no template names them.
        json_schema_extra={"x-event-fields": ["total", "order", "order_id", "id"]})
    account: Literal["bonus", "qualification"] = Field(
        default="bonus", description="bonus (spendable) or qualification (counts toward a level)")
    activates_in: Duration | None = Field(default=None, description="Activation delay",
                                          examples=["1d"])
    expires_in: Duration | None = Field(default=None, description="Burn time after activation",
                                        examples=["14d"])
    expires_at: datetime | None = Field(default=None, description="Burn moment with its offset")
    reason: str = Field(default="", max_length=200, description="Why (shown in the statement; "
                        "the programme's welcome reason is limited per phone)",
                        examples=["birthday"])

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a UTC offset, e.g. 2026-12-31T23:59:00+03:00")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> AccrueBonusParams:
        if (self.amount is None) == (self.percent_of_order is None):
            raise ValueError("give exactly one of `amount` or `percent_of_order`")
        if self.expires_in and self.expires_at:
            raise ValueError("give `expires_in` or `expires_at`, not both")
        return self


class WriteOffBonusParams(Params):
    amount: int = Field(gt=0, le=10**12, description="Points to write off", examples=[300])
    reason: str = Field(default="", max_length=200, description="Why", examples=["win-back"])


class IssueCouponParams(Params):
    series: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                        description="Coupon series to issue a code of", examples=["spring-10"])


def _order(context: dict[str, Any]) -> tuple[int, str | None]:
    event = context.get("event") or {}
    data: dict[str, Any] = event.get("data") or {}
    nested = data.get("order")
    order: dict[str, Any] = nested if isinstance(nested, dict) else data
    total = order.get("total")
    if isinstance(total, dict):  # {"amount": 1999, "currency": "RUB"}
        total = total.get("amount")
    if isinstance(total, bool) or not isinstance(total, int):
        raise ApplicationError("`percent_of_order` needs the trigger event's order total in "
                               "minor units at event.data.total (or event.data.order.total)",
                               type="LoyaltyInvalid", non_retryable=True)
    order_id = order.get("order_id") or order.get("id")
    return total, str(order_id) if order_id is not None else None


def _data(result: OperationResult) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True, include={
        "operation_id", "account", "amount", "balance", "pending", "active_from",
        "expires_at", "level", "level_changed"})


def accrue(deps: WorkerDeps, call: StepCall, now: datetime) -> StepResult:
    """Perform `accrue_bonus` for one run and step."""
    params = AccrueBonusParams.model_validate(call.params)
    order_id = None
    if params.amount is not None:
        amount = params.amount
    else:
        assert params.percent_of_order is not None
        total, order_id = _order(call.context)
        amount = percent_of(total, params.percent_of_order)
        if amount <= 0:
            return StepResult(outcome="skipped", detail=f"{params.percent_of_order}% of "
                              f"{total} rounds down to 0 points")
    try:
        active_from = now + (parse_duration(params.activates_in) if params.activates_in
                             else timedelta(0))
        expires_at = params.expires_at or (
            active_from + parse_duration(params.expires_in) if params.expires_in else None)
    except OverflowError as exc:
        raise LoyaltyError("`activates_in` and `expires_in` reach past the year 9999; "
                           "shorten them") from exc
    result = platform_for(deps.engine, deps.settings.loyalty).accrue(AccrueRequest(
        customer=Identifier(type="id", value=call.run.customer_id), amount=amount,
        account=params.account, reason=params.reason, active_from=active_from,
        expires_at=expires_at, order_id=order_id, idempotency_key=call.idempotency_key,
        source=Source(kind="journey", run=call.run.workflow_id, step=call.step_id), now=now))
    return StepResult(outcome="accrued", detail=f"{result.amount} to {result.account}",
                      data=_data(result))


def write_off(deps: WorkerDeps, call: StepCall, now: datetime) -> StepResult:
    """Perform `write_off_bonus` for one run and step."""
    params = WriteOffBonusParams.model_validate(call.params)
    result = platform_for(deps.engine, deps.settings.loyalty).write_off(WriteOffRequest(
        customer=Identifier(type="id", value=call.run.customer_id), amount=params.amount,
        reason=params.reason, idempotency_key=call.idempotency_key,
        source=Source(kind="journey", run=call.run.workflow_id, step=call.step_id), now=now))
    return StepResult(outcome="written_off", detail=str(result.amount), data=_data(result))


def issue(deps: WorkerDeps, call: StepCall, now: datetime) -> StepResult:
    """Perform `issue_coupon` for one run and step."""
    params = IssueCouponParams.model_validate(call.params)
    coupon = platform_for(deps.engine, deps.settings.loyalty).issue_coupon(
        series=params.series, customer=Identifier(type="id", value=call.run.customer_id),
        idempotency_key=call.idempotency_key, now=now)
    return StepResult(outcome="issued", detail=params.series, data=coupon.model_dump(
        mode="json", include={"code", "series", "active_from", "expires_at"}))


Perform = Callable[[WorkerDeps, StepCall, datetime], StepResult]


def _guarded(perform: Perform, deps: WorkerDeps, call: StepCall, now: datetime) -> StepResult:
    """Sort loyalty errors: refusals are outcomes, bad data is final, the rest retries."""
    try:
        return perform(deps, call, now)
    except Overdraw as exc:
        return StepResult(outcome="refused", detail=str(exc), data={
            "reason": "insufficient_balance", "available": exc.available})
    except LoyaltyRefused as exc:
        return StepResult(outcome="refused", detail=str(exc), data={"reason": exc.reason})
    except (LoyaltyNotFound, CustomerNotFound) as exc:
        raise ApplicationError(str(exc), type="LoyaltyNotFound", non_retryable=True) from exc
    except LoyaltyError as exc:
        raise ApplicationError(str(exc), type="LoyaltyInvalid", non_retryable=True) from exc


async def _level_events(deps: WorkerDeps, call: StepCall, result: StepResult) -> None:
    """Route `loyalty.level_changed` when the step moved the customer to another level."""
    change = result.data.get("level_changed")
    if not change:
        return
    loyalty = deps.settings.loyalty
    programme = getattr(platform_for(deps.engine, loyalty), "programme", None)
    name = programme.programme if isinstance(programme, Programme) else loyalty.adapter
    # The worker hands steps an emitter over its event router (steps sit below services).
    await deps.emit_events([level_event(call.run.customer_id, name,
                                    LevelChange.model_validate(change), call.idempotency_key)])


def _activity(name: str, perform: Perform) -> Callable[[WorkerDeps], Callable[..., Any]]:
    def factory(deps: WorkerDeps) -> Callable[[StepCall], Awaitable[StepResult]]:
        @activity.defn(name=name)
        async def run(call: StepCall) -> StepResult:
            # The run's clock (the server's time when this attempt was scheduled), as sends
            # use: activation and burn times follow the journey, also on a simulated clock.
            now = activity.info().current_attempt_scheduled_time
            result = await asyncio.to_thread(_guarded, perform, deps, call, now)
            await _level_events(deps, call, result)
            return result

        return run

    return factory


def _step(name: str, params: type[Params], label: str, description: str, perform: Perform,
          icon: str, example: dict[str, Any]) -> StepType:
    return StepType(
        name=name, params=params, kind="activity", label=label, description=description,
        call=ActivityCall(activity=f"tropa.{name}", start_to_close_seconds=10, retry=RETRY),
        activity=_activity(f"tropa.{name}", perform),
        ui={"icon": icon}, examples=({name: example},))


ACCRUE = _step("accrue_bonus", AccrueBonusParams, "Accrue bonus",
               "Put bonus or qualification points on the customer's account, with an "
               "activation delay and a burn time", accrue, "gift",
               {"amount": 500, "expires_in": "14d", "reason": "birthday"})
WRITE_OFF = _step("write_off_bonus", WriteOffBonusParams, "Write off bonus",
                  "Take points from the customer's bonus account, nearest to expiry first",
                  write_off, "minus-circle", {"amount": 300, "reason": "expired promo"})
ISSUE = _step("issue_coupon", IssueCouponParams, "Issue coupon",
              "Issue a unique code of a coupon series to the customer", issue, "ticket",
              {"series": "spring-10"})
STEPS = (ACCRUE, WRITE_OFF, ISSUE)

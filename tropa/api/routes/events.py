"""Events from API clients, one at a time or in batches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tropa.api.actor import ActorDep
from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut, field_errors
from tropa.api.schemas.events import BatchItem, BatchResult, EventAccepted, EventBatch, EventCreate
from tropa.customers.audit import Actor
from tropa.customers.identifiers import CustomerNotFound
from tropa.customers.orders import OrderConflict
from tropa.dsl.plan import EventIn
from tropa.services.event_batch import Failed, ingest_many
from tropa.services.event_intake import SingleIntake
from tropa.services.events import EventRouter, Routed, UnknownCustomer
from tropa.services.orders import record_event_order

router = APIRouter(prefix="/v1/events", tags=["events"], responses=ERRORS,
                   dependencies=[Depends(require("events:write"))])


async def get_router(request: Request) -> EventRouter:
    """The app's event router."""
    return request.app.state.event_router  # type: ignore[no-any-return]


RouterDep = Annotated[EventRouter, Depends(get_router)]


async def get_intake(request: Request) -> SingleIntake:
    """The app's single-event intake (group commit over concurrent requests)."""
    return request.app.state.event_intake  # type: ignore[no-any-return]


IntakeDep = Annotated[SingleIntake, Depends(get_intake)]


@router.post("", status_code=202, response_model=EventAccepted,
             responses={404: {"model": ErrorOut, "description": "The customer does not exist"},
                        409: {"model": ErrorOut, "description": "The order in an "
                              "`order.placed` belongs to another customer"}})
async def post_event(body: EventCreate, events: RouterDep, intake: IntakeDep,
                     actor: ActorDep) -> EventAccepted:
    """Store an event once and start or signal the journeys that listen to it. An
    `order.placed` whose data holds `order_id` and `total` also records the order."""
    try:
        event = EventIn(**body.model_dump())
        await record_event_order(events, event, actor)
        routed = await intake.ingest(event)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "data", *e["loc"])}
                                      for e in exc.errors()]) from None
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except OrderConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except UnknownCustomer as exc:
        raise HTTPException(404, f"customer {exc.args[0]!r} does not exist; create it first "
                            f"with PUT /v1/customers/{exc.args[0]}") from exc
    return EventAccepted(event_id=body.event_id, status=routed.status, started=routed.started,
                         signalled=routed.signalled, skipped=routed.skipped)


@router.post(":batch", status_code=202, response_model=BatchResult)
async def post_events(body: EventBatch, events: RouterDep, actor: ActorDep) -> BatchResult:
    """Up to 1,000 events; each is accepted, a duplicate, or rejected with the reason. An
    `order.placed` whose data holds `order_id` and `total` also records the order."""
    items: list[BatchItem | None] = [None] * len(body.events)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(body.events):
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            event = EventCreate.model_validate(raw)
        except ValidationError as exc:
            errors = field_errors(exc.errors(), ["body", "events", index])
            items[index] = BatchItem(index=index, status="rejected",
                                     event_id=raw_id if isinstance(raw_id, str) else None,
                                     reason=f"{errors[0].path}: {errors[0].message}",
                                     errors=errors)
            continue
        valid.append((index, EventIn(**event.model_dump())))
    valid = [(i, e) for i, e in valid if await _order_recorded(events, i, e, actor, items)]
    outcomes = await ingest_many(events, [e for _, e in valid])
    for (index, stored), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, Failed):
            items[index] = BatchItem(index=index, event_id=stored.event_id, status="rejected",
                                     reason=outcome.reason, retryable=outcome.retryable)
        elif isinstance(outcome, Routed):
            items[index] = BatchItem(index=index, event_id=stored.event_id, status=outcome.status,
                                     started=outcome.started, signalled=outcome.signalled,
                                     skipped=outcome.skipped)
    done = [i for i in items if i is not None]
    return BatchResult(items=done, **{s: sum(i.status == s for i in done)
                                      for s in ("accepted", "duplicate", "rejected")})


async def _order_recorded(events: EventRouter, index: int, event: EventIn, actor: Actor,
                          items: list[BatchItem | None]) -> bool:
    """Record the order an `order.placed` of a batch carries; False (and the item rejected)
    when it cannot be."""
    try:
        await record_event_order(events, event, actor)
    except ValidationError as exc:
        errors = field_errors(exc.errors(), ["body", "events", index, "data"])
        reason = f"{errors[0].path}: {errors[0].message}"
    except (CustomerNotFound, OrderConflict) as exc:
        reason, errors = str(exc), []
    else:
        return True
    items[index] = BatchItem(index=index, event_id=event.event_id, status="rejected",
                             reason=reason, errors=errors)
    return False

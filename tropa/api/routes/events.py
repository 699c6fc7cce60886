"""Events from API clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from tropa.api.deps import require
from tropa.api.schemas import EventAccepted, EventCreate
from tropa.dsl.plan import EventIn
from tropa.services.events import EventRouter, UnknownCustomer

router = APIRouter(prefix="/v1/events", tags=["events"])


def get_router(request: Request) -> EventRouter:
    """The app's event router."""
    return request.app.state.event_router  # type: ignore[no-any-return]


@router.post("", status_code=202, response_model=EventAccepted,
             dependencies=[Depends(require("events:write"))],
             responses={404: {"description": "The customer does not exist"}})
async def post_event(body: EventCreate,
                     events: Annotated[EventRouter, Depends(get_router)]) -> EventAccepted:
    """Store an event once and start or signal the journeys that listen to it."""
    try:
        routed = await events.ingest(EventIn(**body.model_dump()))
    except UnknownCustomer as exc:
        raise HTTPException(404, f"customer {exc.args[0]!r} does not exist; create it first "
                            f"with PUT /v1/customers/{exc.args[0]}") from exc
    return EventAccepted(event_id=body.event_id, status=routed.status, started=routed.started,
                         signalled=routed.signalled, skipped=routed.skipped)

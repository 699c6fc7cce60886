"""`POST /v1/journeys:simulate`: what a journey would do to one customer, for a builder's
preview. The simulation runs the real engine (see tropa.simulate) in this process, on its own
Temporal test server, database and sandbox; it is heavy, so few run at once and each has a
time limit."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut
from tropa.api.routes.journeys import PROBLEMS, VALIDATE_TIMEOUT, invalid
from tropa.dsl.positions import MAX_BYTES
from tropa.errors import JourneyInvalid, Problem, SimulationInvalid
from tropa.simulate import inputs
from tropa.simulate.inputs import Simulation
from tropa.simulate.runner import simulate

router = APIRouter(prefix="/v1/journeys", tags=["journeys"], responses=ERRORS)
# A simulation holds a Temporal test server, workers and a database for its length: two at a
# time per API process, the next one is told to come back (429).
MAX_SIMULATIONS = 2
SIMULATE_TIMEOUT = 120.0


class SimulateRequest(BaseModel):
    """A journey, one customer, their events and the span of simulated time."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    journey: str = Field(max_length=MAX_BYTES, description="The journey YAML")
    customer: dict[str, Any] = Field(description='The body of PUT /v1/customers/{id} plus "id"',
                                     examples=[{"id": "c-42", "first_name": "Anna",
                                                "time_zone": "Europe/Moscow",
                                                "birthday": "1990-02-28"}])
    events: list[dict[str, Any]] = Field(
        default_factory=list, max_length=inputs.MAX_EVENTS,
        description="Events as POST /v1/events takes them, each delivered at its occurred_at")
    coupon_series: list[dict[str, Any]] = Field(
        default_factory=list, max_length=100, description="Coupon series the journey issues "
        "from, as POST /v1/loyalty/coupon-series takes them")
    start: AwareDatetime | None = Field(default=None, alias="from",
                                        description="Start of the span; default now, only the "
                                        "future")
    until: AwareDatetime = Field(description="End of the span")


class SimulateResult(BaseModel):
    """What happened, in time order: the same objects `tropa simulate --json` prints."""

    journey: str
    version: str
    customer_id: str
    until: datetime
    happenings: list[dict[str, Any]]


def _limiter(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    if getattr(state, "simulations", None) is None:
        state.simulations = asyncio.Semaphore(MAX_SIMULATIONS)
    limiter: asyncio.Semaphore = state.simulations
    return limiter


def _problems(exc: SimulationInvalid) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": f"the simulation's input is invalid: {exc.problems[0]}",
        "problems": [{"message": p, "text": p} for p in exc.problems]})


def _prepare(body: SimulateRequest) -> Simulation:
    customer_id, customer = inputs.check_customer(body.customer, "$.customer")
    events = inputs.check_events([(f"$.events[{i}]", e) for i, e in enumerate(body.events)],
                                 customer_id)
    series = inputs.check_series(body.coupon_series, "$.coupon_series")
    return inputs.prepare(body.journey, "<request>", customer_id, customer, events, body.start,
                          body.until, series)


@router.post(":simulate", response_model=SimulateResult, dependencies=[Depends(require("read"))],
             responses={**PROBLEMS,
                        429: {"model": ErrorOut, "description": "Too many simulations at once"},
                        504: {"model": ErrorOut, "description": "The simulation took too long"}})
async def simulate_journey(body: SimulateRequest,
                           request: Request) -> SimulateResult | JSONResponse:
    """Run a journey for one customer over simulated time, on the real engine with a throwaway
    database, Temporal test server and sandbox providers; returns what would happen."""
    limiter = _limiter(request)
    if limiter.locked():
        raise HTTPException(429, f"{MAX_SIMULATIONS} simulations are running; try again when "
                            "one has finished")
    async with limiter:
        try:
            async with asyncio.timeout(VALIDATE_TIMEOUT):
                sim = await run_in_threadpool(_prepare, body)
        except TimeoutError:
            return invalid(JourneyInvalid([Problem(
                f"validating the journey took longer than {VALIDATE_TIMEOUT:g} s",
                source="<request>", line=1, column=1,
                hint="make the journey smaller or its templates simpler")]))
        except JourneyInvalid as exc:
            return invalid(exc)
        except SimulationInvalid as exc:
            return _problems(exc)
        try:
            async with asyncio.timeout(SIMULATE_TIMEOUT):
                happenings = await simulate(sim, request.app.state.settings)
        except TimeoutError:
            raise HTTPException(504, f"the simulation took longer than {SIMULATE_TIMEOUT:g} s; "
                                "simulate a shorter span") from None
    return SimulateResult(journey=sim.plan.journey, version=sim.plan.version,
                          customer_id=sim.customer_id, until=sim.until, happenings=happenings)

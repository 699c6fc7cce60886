"""What a simulation is given, checked before anything starts: the journey, one customer (the
body of `PUT /v1/customers/{id}` plus `id`), events as `POST /v1/events` takes them, and the
span of simulated time. Every mistake names its place (file:line, JSON path, option) and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml
from pydantic import ValidationError

from tropa.api.schemas.customers import CustomerUpsert
from tropa.api.schemas.events import EventCreate
from tropa.clock import utcnow
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import EventIn, Plan
from tropa.errors import SimulationInvalid
from tropa.loyalty.coupons import SeriesSpec

# A simulated span longer than this is refused: five years cover every yearly journey twice
# over, and a longer one would hold a simulation slot for minutes.
MAX_SPAN = timedelta(days=366 * 5)
# `--from` may be "now" as the user's clock saw it a moment ago.
FROM_SLACK = timedelta(minutes=1)
MAX_EVENTS = 10_000


@dataclass
class Simulation:
    """A checked simulation: the compiled journey, the customer, events in time order."""

    plan: Plan
    journey_yaml: str
    customer_id: str
    customer: dict[str, Any]
    until: datetime
    start: datetime | None = None
    events: list[EventIn] = field(default_factory=list)
    coupon_series: list[SeriesSpec] = field(default_factory=list)
    """Series the journey issues coupons from, declared in the throwaway database first."""


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(the whole object)"


def _pydantic_problems(exc: ValidationError, place: str) -> list[str]:
    return [f"{place}: `{_where(e['loc'])}`: {e['msg']}" for e in exc.errors()]


def check_customer(raw: Any, source: str) -> tuple[str, dict[str, Any]]:
    """The customer's id and its `PUT /v1/customers/{id}` body, validated as the API does."""
    if not isinstance(raw, dict):
        raise SimulationInvalid([f"{source}: a customer is a JSON object: the body of "
                                 "PUT /v1/customers/{id} plus \"id\""])
    body = dict(raw)
    customer_id = body.pop("id", None)
    problems = []
    if not isinstance(customer_id, str) or not customer_id:
        problems.append(f"{source}: `id`: missing; add the customer's id, e.g. \"id\": \"c-42\"")
    try:
        customer = CustomerUpsert.model_validate(body)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, source)
    if problems:
        raise SimulationInvalid(problems)
    assert isinstance(customer_id, str)
    return customer_id, customer.model_dump()


def read_customer(text: str, source: str) -> tuple[str, dict[str, Any]]:
    """`check_customer` of a JSON file's text."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SimulationInvalid([f"{source}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}; "
                                 "give the body of PUT /v1/customers/{id} plus \"id\""]) from None
    return check_customer(raw, source)


def check_events(items: list[tuple[str, Any]], customer_id: str) -> list[EventIn]:
    """Events validated as `POST /v1/events` does, each with its place; in time order."""
    if len(items) > MAX_EVENTS:
        raise SimulationInvalid([f"{len(items)} events: at most {MAX_EVENTS} per simulation"])
    events, problems = [], []
    for place, raw in items:
        try:
            event = EventCreate.model_validate(raw)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, place)
            continue
        if event.customer_id != customer_id:
            problems.append(f"{place}: `customer_id`: {event.customer_id!r} is not the simulated "
                            f"customer; give {customer_id!r}")
            continue
        events.append(EventIn(**event.model_dump()))
    ids = [e.event_id for e in events]
    problems += [f"event_id {i!r} is given twice; a repeated event_id is a duplicate the "
                 "router ignores, give each event its own" for i in sorted(set(ids))
                 if ids.count(i) > 1]
    if problems:
        raise SimulationInvalid(problems)
    return sorted(events, key=lambda e: e.occurred_at)


def read_events(text: str, source: str, customer_id: str) -> list[EventIn]:
    """`check_events` of a JSON Lines file: one event object per line, blank lines skipped."""
    items, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"{source}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{number}:{exc.colno}: not JSON: {exc.msg}; write one "
                            "event object per line")
    if problems:
        raise SimulationInvalid(problems)
    return check_events(items, customer_id)


def check_span(start: datetime | None, until: datetime, events: list[EventIn]) -> None:
    """`start` (None: now) lies ahead, `until` after it, events within, the span bounded."""
    now = utcnow()
    problems = []
    for name, value in (("--from", start), ("--until", until)):
        if value is not None and value.tzinfo is None:
            problems.append(f"{name} {value.isoformat()}: give the UTC offset, e.g. "
                            f"{value.isoformat()}Z or {value.isoformat()}+03:00")
    if problems:
        raise SimulationInvalid(problems)
    begin = start or now
    if start is not None and start < now - FROM_SLACK:
        problems.append(f"--from {start.isoformat()} lies in the past; a simulation shows what "
                        f"is ahead: give a time after {now.isoformat(timespec='seconds')} or "
                        "leave --from out to start now")
    if until <= begin:
        problems.append(f"--until {until.isoformat()} is not after the start "
                        f"{begin.isoformat(timespec='seconds')}; give a later time")
    elif until - begin > MAX_SPAN:
        problems.append(f"--until {until.isoformat()}: at most {MAX_SPAN.days} days can be "
                        "simulated at once; give an earlier --until")
    for event in events:
        # Events from before the start are history (past purchases): delivered at the start.
        if event.occurred_at > until:
            problems.append(f"event {event.event_id!r}: occurred_at "
                            f"{event.occurred_at.isoformat()} lies after --until "
                            f"{until.isoformat()}; "
                            "move it into the span or give a later --until")
    if problems:
        raise SimulationInvalid(problems)


def check_series(items: Any, source: str) -> list[SeriesSpec]:
    """Coupon series as `POST /v1/loyalty/coupon-series` takes them, a list."""
    if not isinstance(items, list):
        raise SimulationInvalid([f"{source}: give a list of coupon series as POST "
                                 "/v1/loyalty/coupon-series takes them"])
    series, problems = [], []
    for i, item in enumerate(items):
        try:
            series.append(SeriesSpec.model_validate(item))
        except ValidationError as exc:
            problems += _pydantic_problems(exc, f"{source}[{i}]")
    if problems:
        raise SimulationInvalid(problems)
    return series


def read_series(text: str, source: str) -> list[SeriesSpec]:
    """`check_series` of a YAML (or JSON) file's text."""
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SimulationInvalid([f"{source}: not YAML: {exc}"]) from None
    return check_series(items or [], source)


def prepare(journey_yaml: str, journey_source: str, customer_id: str,
            customer: dict[str, Any], events: list[EventIn], start: datetime | None,
            until: datetime, coupon_series: list[SeriesSpec] | None = None) -> Simulation:
    """A checked simulation; JourneyInvalid (caret errors) or SimulationInvalid otherwise."""
    plan = compile_journey(journey_yaml, journey_source)
    check_span(start, until, events)
    return Simulation(plan=plan, journey_yaml=journey_yaml, customer_id=customer_id,
                      customer=customer, start=start, until=until, events=events,
                      coupon_series=coupon_series or [])

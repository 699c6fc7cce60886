"""The date and inactivity language's errors, and the hourly sweep's SQL on SQLite and
PostgreSQL: customer writes keep the date index, and overlapping or repeated sweeps claim each
occurrence once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.support.journeys import add_customer
from tropa.customers.audit import Actor
from tropa.customers.imports.customers import CustomerImport
from tropa.customers.imports.rows import Row
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import EventIn, Plan
from tropa.errors import JourneyInvalid
from tropa.services import customers as service
from tropa.services.time_triggers import TimeTriggerSweep
from tropa.store.db import session_scope

STEPS = "steps:\n  - send: {channel: sms, text: hi}\n"


def problems(trigger: str) -> list[str]:
    with pytest.raises(JourneyInvalid) as info:
        compile_journey("journey: j\n" + trigger + STEPS, "j.yaml")
    return [p.render().splitlines()[0] for p in info.value.problems]


def test_date_and_inactivity_mistakes_name_their_line_and_column() -> None:
    assert problems("trigger:\n  date: customer.attributes.colour\n  offset: -1x\n"
                    "  at: 10:00\n  every: week\n") == [
        "j.yaml:3:9: error: `trigger.date`: `colour` does not hold a date; attribute dates "
        "live in keys named birthday, *_date or *_at (e.g. customer.attributes.wedding_date)",
        "j.yaml:4:11: error: `trigger.offset`: '-1x' is not an offset; write days before or "
        "after the date, e.g. -1d, 0d, +7d or +2w",
        "j.yaml:5:7: error: `trigger.at`: a time of day must be in quotes: YAML reads 10:00 "
        "unquoted as a number; write at: \"10:00\"",
        "j.yaml:6:10: error: `trigger.every`: Input should be 'year', 'month' or 'once'"]
    [both] = problems("trigger: {date: customer.birthday, event: cart.updated}\n")
    assert both.startswith("j.yaml:2:10: error: `trigger`: give one of `event:`, `segment:`")
    [days] = problems("trigger:\n  inactivity: {event: order.placed, for: 90}\n")
    assert days.startswith("j.yaml:3:42: error: `trigger.inactivity.for`: '90' is not a number")
    plan = compile_journey("journey: j\ntrigger:\n  date: customer.attributes.kids[].birth_date"
                           "\n  offset: +1w\n" + STEPS)
    assert plan.trigger.date is not None and plan.trigger.date.offset_days == 7
    assert plan.trigger.event == "date.j"


class Starts:
    """Stands in for the event router and counts what it is asked to start."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def start_occurrence(self, plan: Plan, event: EventIn, workflow_id: str,
                               **_: Any) -> str:
        assert event.type == plan.trigger.event
        self.ids.append(workflow_id)
        return "started"


def _dates(engine: sa.Engine, customer_id: str) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
            "SELECT path, item, month_day FROM customer_dates WHERE customer_id = :c "
            "AND path <> 'customer.created_at' ORDER BY path, item"), {"c": customer_id})]


async def test_writes_keep_the_dates_and_sweeps_claim_once(any_engine: sa.Engine) -> None:
    engine = any_engine
    add_customer(engine, "c-1", birthday=date(1990, 5, 15), time_zone="Asia/Vladivostok")
    with session_scope(engine) as session:
        service.merge_attributes(session, customer_id="c-1", values={
            "children": [{"name": "Ivan", "birth_date": "15.05.2015"}]})
    CustomerImport(engine, Actor("import", id="test"), dry_run=False).run([Row(
        number=2, id="c-2", fields={"birthday": date(1980, 5, 15), "time_zone": "UTC",
                                    "phone": "+79160000099", "email": "c2@example.com"})])
    assert _dates(engine, "c-1") == [
        ("customer.attributes.children[].birth_date", 0, "05-15"),
        ("customer.birthday", 0, "05-15")]
    assert _dates(engine, "c-2") == [("customer.birthday", 0, "05-15")]

    plans = [compile_journey("journey: b\ntrigger: {date: customer.birthday, offset: -1d, "
                             "at: \"10:00\"}\n" + STEPS),
             compile_journey("journey: k\ntrigger:\n  date: customer.attributes.children[]."
                             "birth_date\n  at: \"10:00\"\n" + STEPS)]
    starts = Starts()
    sweep = TimeTriggerSweep(engine, starts)  # type: ignore[arg-type]
    vladivostok = datetime.combine(date(2027, 5, 14), time(10), ZoneInfo("Asia/Vladivostok"))
    before = vladivostok.astimezone(UTC) - timedelta(hours=1)
    await sweep.run(plans, before)
    await sweep.run(plans, before)
    await sweep.run(plans, before + timedelta(minutes=30))
    assert starts.ids == ["journey/b/c-1/2027"]
    utc_moment = datetime(2027, 5, 14, 10, tzinfo=UTC)
    for hour in range(-1, 3):  # the hour before, and overlapping late ones
        await sweep.run(plans, utc_moment + timedelta(hours=hour))
    assert starts.ids == ["journey/b/c-1/2027", "journey/b/c-2/2027"]
    next_day = datetime.combine(date(2027, 5, 15), time(9), ZoneInfo("Asia/Vladivostok"))
    await sweep.run(plans, next_day)
    assert starts.ids[2:] == ["journey/k/c-1/2027-i0"]


class DiesOnce(Starts):
    """A router whose process dies at the first start, after the claims were written."""

    async def start_occurrence(self, plan: Plan, event: EventIn, workflow_id: str,
                               **kwargs: Any) -> str:
        if not self.ids:
            self.ids.append("died")
            raise ConnectionError("worker killed")
        return await super().start_occurrence(plan, event, workflow_id, **kwargs)


async def test_a_sweep_that_died_after_claiming_starts_each_claim_once_on_retry(
        any_engine: sa.Engine) -> None:
    for n in range(3):
        add_customer(any_engine, f"c-{n}", birthday=date(1990, 5, 15), time_zone="UTC",
                     phone=f"+7916000010{n}", email=f"c{n}@example.com")
    plans = [compile_journey("journey: b\ntrigger: {date: customer.birthday}\n" + STEPS)]
    starts = DiesOnce()
    sweep = TimeTriggerSweep(any_engine, starts)  # type: ignore[arg-type]
    now = datetime(2027, 5, 15, 9, tzinfo=UTC)
    with pytest.raises(ConnectionError):
        await sweep.run(plans, now)
    await sweep.run(plans, now)  # the activity's retry, at the same workflow time
    await sweep.run(plans, now + timedelta(hours=1))
    assert starts.ids == ["died", "journey/b/c-0/2027", "journey/b/c-1/2027",
                          "journey/b/c-2/2027"]

"""Run a shipped journey through a `Scenario` on the time-skipping server and read back what
each customer saw, as `Happening`s in their local time (tests/support/scenario_timelines.py).

The clock is moved with `env.sleep` from one action (an event, a sweep, a daily RF run) to the
next; everything the journeys did is then read from where the product keeps it: the message
log, the loyalty ledger, coupons, tasks, and each run's status."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.temporal import time_skipping_server
from tests.test_date_triggers import hour_before
from tropa.api.schemas.customers import CustomerUpsert
from tropa.dsl.plan import EventIn
from tropa.services import customers as customer_service
from tropa.services import segments
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.loyalty_models import Coupon, LoyaltyBucket, LoyaltyOperation
from tropa.store.models import Message
from tropa.store.task_models import Task
from tropa.store.trigger_models import TriggerClaim
from tropa.workflows.segments_daily import SegmentsDaily
from tropa.workflows.time_triggers import TimeTriggersHourly

from .scenario_timelines import Happening, Scenario

EXAMPLES = Path(__file__).parents[2] / "examples"
# What the customer got, by the message log's status (the sandbox delivers what it takes).
_STATUS = {"accepted": "delivered", "sent": "delivered", "delivered": "delivered",
           "sent_unconfirmed": "delivered"}
_RANK = {"loyalty": 0, "message": 1, "task": 2, "run_ended": 3}

Action = tuple[datetime, int, Callable[[], Awaitable[object]]]


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own: each scenario sets the clock to its own
    fixed dates, which one test of a module would otherwise have left behind."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    """A worker on the test's own server with every channel on the sandbox and a manager to
    hand tasks to."""
    from tropa.settings import Assignee

    providers = settings.providers
    providers.whatsapp_url = providers.voice_url = providers.sms_url
    settings.tasks.assignees = {"manager": Assignee(email="manager@shop.example")}
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def local_text(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def publish_example(harness: Harness, journey: str) -> None:
    harness.publish((EXAMPLES / f"{journey}.yaml").read_text(encoding="utf-8"))


def add_customers(harness: Harness, scenario: Scenario) -> None:
    """Store the customers as `PUT /v1/customers/{id}` does."""
    for customer_id, body in scenario.customers.items():
        data = CustomerUpsert.model_validate(body).model_dump()
        with session_scope(harness.engine) as session:
            customer_service.upsert(session, customer_id=customer_id, data=data)


async def advance_to(harness: Harness, moment: datetime) -> None:
    """Move the server's clock to `moment` (timers due before it fire on the way)."""
    ahead = moment - await harness.env.get_current_time()
    assert ahead > -timedelta(minutes=1), f"the clock is already past {moment}"
    if ahead > timedelta(0):
        await harness.env.sleep(ahead)


async def deliver(harness: Harness, event: dict[str, Any]) -> None:
    """An event through the product's router, stamped with the server's now."""
    routed = await harness.router.ingest(EventIn(
        event_id=event["event_id"], type=event["type"], customer_id=event["customer_id"],
        occurred_at=await harness.env.get_current_time(), data=event.get("data", {})))
    harness.started.update(routed.started)


async def hourly_sweep(harness: Harness) -> None:
    """The date and inactivity sweep at the server's now; no time passes while it runs."""
    with harness.env.auto_time_skipping_disabled():
        await harness.client.execute_workflow(
            TimeTriggersHourly.run, id=f"sweep-{uuid.uuid4()}", task_queue=harness.task_queue)


async def rf_daily(harness: Harness) -> None:
    """The daily RF run at the server's now."""
    with harness.env.auto_time_skipping_disabled():
        await harness.client.execute_workflow(
            SegmentsDaily.run, id=f"rf-daily-{uuid.uuid4()}", task_queue=harness.task_queue)


def record_purchases(engine: sa.Engine, customer_id: str, times: list[datetime]) -> None:
    """Orders placed in the past, and the customer's purchase totals, as recorded orders
    leave them (the order API's own "now" is the wall clock, not the server's)."""
    with engine.begin() as conn:
        existing = conn.execute(sa.text("SELECT count(*) FROM orders WHERE customer_id = :c"),
                                {"c": customer_id}).scalar() or 0
        for i, at in enumerate(times, start=existing):
            conn.execute(sa.text(
                "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, "
                "refunded, channel, items, attributes, body_hash, counted, created_at, "
                "updated_at) VALUES (:id, :c, :at, 'placed', 'RUB', 100000, 0, 'online', '[]', "
                "'{}', 'h', true, :at, :at)"), {"id": f"{customer_id}-{i}", "c": customer_id,
                                                "at": at})
        conn.execute(sa.text("DELETE FROM purchase_stats WHERE customer_id = :c"),
                     {"c": customer_id})
        first, last, n = conn.execute(sa.text(
            "SELECT min(placed_at), max(placed_at), count(*) FROM orders "
            "WHERE customer_id = :c"), {"c": customer_id}).one()
        conn.execute(sa.text(
            "INSERT INTO purchase_stats (customer_id, currency, orders_count, total_spent, "
            "first_purchase_at, last_purchase_at) VALUES (:c, 'RUB', :n, :sum, :first, :last)"),
            {"c": customer_id, "n": n, "sum": 100000 * n, "first": first, "last": last})


async def purchase(harness: Harness, customer_id: str) -> None:
    """A purchase now: recorded, the customer moved between segments, the events routed."""
    now = await harness.env.get_current_time()
    record_purchases(harness.engine, customer_id, [now])
    for event in segments.refresh_customers(harness.engine, [customer_id], now=now,
                                            cause="purchase"):
        routed = await harness.router.ingest(event)
        harness.started.update(routed.started)


async def play(harness: Harness, actions: list[Action], until: datetime) -> None:
    """Perform the actions in time order, then let the clock run to `until`."""
    for moment, _, act in sorted(actions, key=lambda a: (a[0], a[1])):
        await advance_to(harness, moment)
        await act()
    await advance_to(harness, until)


def run_starts(scenario: Scenario) -> list[datetime]:
    """When the runs start: the first happening of each run in the expected timelines."""
    starts = []
    for customer, happenings in scenario.expected.items():
        zone = ZoneInfo(scenario.customers[customer]["time_zone"])
        first = True
        for h in happenings:
            if first:
                starts.append(datetime.fromisoformat(h.at).replace(tzinfo=zone))
            first = h.kind == "run_ended"
    return starts


def sweeps(harness: Harness, scenario: Scenario) -> list[Action]:
    """The hourly sweep before each run's moment (twice: a second sweep starts nothing), an
    hour and a day after it, and on the first of every month of the period."""
    moments: set[datetime] = set()
    for start in run_starts(scenario):
        before = hour_before(start)
        moments.update({before, before + timedelta(hours=2), before + timedelta(days=1)})
    month = utc(scenario.start)
    while month < utc(scenario.until):
        moments.add(month)
        month = (month + timedelta(days=32)).replace(day=1)
    actions: list[Action] = []
    for moment in moments:
        actions.append((moment, 0, lambda: hourly_sweep(harness)))
    actions += [(hour_before(s), 1, lambda: hourly_sweep(harness))
                for s in run_starts(scenario)]
    return actions


def event_actions(harness: Harness, scenario: Scenario) -> list[Action]:
    return [(utc(e["occurred_at"]), 1, lambda e=e: deliver(harness, e))
            for e in scenario.events]


# -- reading back ----------------------------------------------------------------------------


async def observed(harness: Harness, scenario: Scenario) -> dict[str, list[Happening]]:
    """Each customer's timeline as the product recorded it."""
    timeline: dict[str, list[tuple[datetime, int, Happening]]] = {
        c: [] for c in scenario.customers}
    zones = {c: str(body["time_zone"]) for c, body in scenario.customers.items()}
    runs: set[str] = set()
    with session_scope(harness.engine) as session:
        for m in session.exec(select(Message).where(Message.journey == scenario.journey)
                              .order_by(col(Message.created_at), col(Message.id))):
            runs.add(m.workflow_id)
            timeline[m.customer_id].append((m.created_at, 1, Happening(
                local_text(m.created_at, zones[m.customer_id]), "message", channel=m.channel,
                text=m.text or "", subject=m.subject or "",
                status=_STATUS.get(m.status, m.status))))
        for op, bucket in session.exec(
                select(LoyaltyOperation, LoyaltyBucket)
                .join(LoyaltyBucket, col(LoyaltyBucket.operation_id) == col(LoyaltyOperation.id))
                .where(col(LoyaltyOperation.customer_id).in_(list(scenario.customers)),
                       LoyaltyOperation.kind == "accrual")):
            zone = zones[op.customer_id]
            timeline[op.customer_id].append((op.created_at, 0, Happening(
                local_text(op.created_at, zone), "loyalty", operation="accrue",
                amount=op.amount, balance=(op.result or {}).get("balance"),
                expires=local_text(bucket.expires_at, zone) if bucket.expires_at else "")))
        for coupon in session.exec(select(Coupon).where(
                col(Coupon.customer_id).in_(list(scenario.customers)))):
            assert coupon.customer_id is not None
            zone = zones[coupon.customer_id]
            timeline[coupon.customer_id].append((coupon.issued_at, 0, Happening(
                local_text(coupon.issued_at, zone), "loyalty", operation="issue_coupon",
                text=coupon.code,
                expires=local_text(coupon.expires_at, zone) if coupon.expires_at else "")))
        for task in session.exec(select(Task).where(Task.journey == scenario.journey)):
            runs.add(task.workflow_id)
            zone = zones[task.customer_id]
            timeline[task.customer_id].append((task.created_at, 2, Happening(
                local_text(task.created_at, zone), "task", assignee=task.assignee,
                text=task.text, due=local_text(task.due_at, zone) if task.due_at else "")))
        runs.update(session.exec(select(TriggerClaim.workflow_id).where(
            TriggerClaim.journey == scenario.journey)))
    runs.update(f"journey/{scenario.journey}/{c}" for c in scenario.customers)
    for workflow_id in sorted(runs):
        with contextlib.suppress(RPCError):
            status = await harness.status(workflow_id)
            end = status.steps[-1] if status.steps else None
            ended_at = end.finished_at if end is not None else None
            reason = end.detail if end is not None and status.state == "exited" else ""
            assert ended_at is not None or status.state == "running", workflow_id
            at = ended_at or datetime.max.replace(tzinfo=UTC)
            timeline[status.customer_id].append((at, 3, Happening(
                local_text(at, zones[status.customer_id]) if ended_at else "running",
                "run_ended", state=status.state, reason=_reason(reason))))
    return {c: _with_codes([h for _, _, h in sorted(items, key=lambda i: (i[0], i[1]))])
            for c, items in timeline.items()}


def _reason(detail: str) -> str:
    """The end reason: `exit_on <event>` or the exit step's text, without what a step in
    flight had recorded before it."""
    return detail.rsplit("then ", 1)[-1]


def _with_codes(happenings: list[Happening]) -> list[Happening]:
    """Coupon codes are random: each issue_coupon keeps it apart, and the text after it that
    names it shows "{code}" as the expected timelines write it."""
    out: list[Happening] = []
    code = ""
    for h in happenings:
        if h.kind == "loyalty" and h.operation == "issue_coupon":
            code = h.text
            assert re.fullmatch(r"KID-[A-Z0-9]{8}", code), code
            h = replace(h, text="")
        elif code and code in h.text:
            h = replace(h, text=h.text.replace(code, "{code}"))
        out.append(h)
    return out


def coupon_codes(harness: Harness, scenario: Scenario) -> list[str]:
    with session_scope(harness.engine) as session:
        return list(session.exec(select(Coupon.code).where(
            col(Coupon.customer_id).in_(list(scenario.customers)))))

"""Loyalty steps in journeys on the time-skipping server with a real Worker and the sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.client import ScheduleActionStartWorkflow, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.loyalty import coupons, ledger, statement
from tropa.loyalty.card_link import card_link
from tropa.loyalty.coupons import SeriesSpec
from tropa.loyalty.programme import Programme
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Event
from tropa.worker.schedules import ensure_schedules
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep, SweepInput, SweepResult

BIRTHDAY = """
journey: birthday
trigger: {event: birthday.eve}
settings: {category: service}
steps:
  - accrue_bonus: {amount: 1500, account: bonus, expires_in: 14d, reason: birthday}
  - send:
      channel: sms
      text: >-
        Happy birthday, {{ customer.first_name }}!
        {{ steps.accrue_bonus.amount | points }} bonuses are yours until
        {{ steps.accrue_bonus.expires_at | date }}.
        Balance {{ customer.loyalty.balance | points }}, card {{ customer.card_link }}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def sweep(harness: Harness, task_queue: str, as_of: datetime) -> SweepResult:
    """One sweep as of `as_of`, as its Schedule would start it then. It has no timers, so it is
    awaited with the clock held: letting time skip while its first task runs could time that
    task out."""
    handle = await harness.client.start_workflow(
        LoyaltyExpirySweep.run, SweepInput(notice_days=7, as_of=as_of),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=task_queue, result_type=SweepResult)
    await closed(handle)
    return await handle.result()


async def closed(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until a run without timers has closed, keeping the server's clock where it is."""

    async def done() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(done, message=f"{handle.id} closed")


async def test_birthday_bonus_is_told_then_burns(harness: Harness, sandbox: SandboxServer,
                                                 task_queue: str, settings: Settings) -> None:
    harness.publish(BIRTHDAY)
    add_customer(harness.engine, "c-bd", time_zone="Asia/Vladivostok")

    await harness.fire("birthday.eve", "c-bd")
    status = await harness.finish("journey/birthday/c-bd")

    assert [(s.type, s.outcome) for s in status.steps] == [
        ("accrue_bonus", "accrued"), ("send", "accepted")]
    with session_scope(harness.engine) as session:
        accrual = statement.entries(session, Programme(), "c-bd")[0]
    assert accrual.expires_at is not None
    burn_day = accrual.expires_at.astimezone(ZoneInfo("Asia/Vladivostok")).strftime("%d.%m.%Y")
    link = card_link("c-bd", settings.loyalty)
    assert [m["text"] for m in sandbox.sent("sms")] == [
        f"Happy birthday, Anna! 1\u00a0500 bonuses are yours until {burn_day}. "
        f"Balance 1\u00a0500, card {link}"]

    # The sweeps run as of 8 and 15 days after the accrual, on the run's clock: the shared
    # time-skipping server's own clock may have jumped on meanwhile (it skips to far-off
    # timeouts whenever a test waits with time unlocked).
    first = await sweep(harness, task_queue, accrual.at + timedelta(days=8))
    assert (first.buckets, first.announced) == (0, 1)
    with Session(harness.engine) as session:
        notice = session.exec(select(Event).where(Event.type == "loyalty.expiring")).one()
    assert notice.customer_id == "c-bd" and notice.data["amount"] == 1500

    second = await sweep(harness, task_queue, accrual.at + timedelta(days=15))
    assert (second.buckets, second.points) == (1, 1500)
    with session_scope(harness.engine) as session:
        assert ledger.balance(session, Programme(), "c-bd").bonus.balance == 0
        lines = statement.entries(session, Programme(), "c-bd")
    assert [(e.kind, e.amount) for e in lines] == [("expiry", -1500), ("accrual", 1500)]
    again = await sweep(harness, task_queue, accrual.at + timedelta(days=16))
    assert again.buckets == 0  # a later sweep burns nothing twice


WELCOME = """
journey: welcome
trigger: {event: signed_up, re_entry: parallel}
settings: {category: service}
steps:
  - accrue_bonus: {amount: 300, reason: welcome}
  - branch:
      if: "steps.accrue_bonus.outcome == 'refused'"
      then:
        - send: {channel: sms, text: "No second welcome bonus"}
      else:
        - issue_coupon: {series: welcome-10}
        - send:
            channel: sms
            text: >-
              Welcome! {{ steps.accrue_bonus.amount }} bonuses
              and code {{ steps.issue_coupon.code }}
"""


async def test_welcome_limit_refuses_the_second_accrual_as_an_outcome(
        harness: Harness, sandbox: SandboxServer) -> None:
    with session_scope(harness.engine) as session:
        coupons.create_series(session, SeriesSpec(id="welcome-10", prefix="W-", length=6))
    harness.publish(WELCOME)
    add_customer(harness.engine, "c-w")

    first = await harness.fire("signed_up", "c-w")
    await closed(harness.handle(first.started[0]))
    second = await harness.fire("signed_up", "c-w")
    await closed(harness.handle(second.started[0]))
    one = await harness.status(first.started[0])
    two = await harness.status(second.started[0])

    assert [s.outcome for s in one.steps] == ["accrued", "else", "issued", "accepted"]
    assert two.state == "completed"
    assert two.steps[0].outcome == "refused"
    assert "welcome limit reached" in two.steps[0].detail
    texts = [m["text"] for m in sandbox.sent("sms")]
    assert texts[0].startswith("Welcome! 300 bonuses and code W-") and len(texts[0]) == 38
    assert texts[1] == "No second welcome bonus"
    with session_scope(harness.engine) as session:
        # as of the run's clock, which the shared time-skipping server may have moved on
        ran_at = two.steps[-1].finished_at
        assert ledger.balance(session, Programme(), "c-w", ran_at).bonus.balance == 300


def test_dates_render_in_the_customers_zone() -> None:
    from tropa.dsl.expressions import render

    late = datetime(2026, 12, 1, 21, 0, tzinfo=ZoneInfo("UTC"))
    assert render("{{ t | date }}", {"t": late.isoformat(),
                                     "customer": {"time_zone": "Asia/Vladivostok"}}) == "02.12.2026"
    assert render("{{ t | date }}", {"t": late.isoformat(),
                                     "customer": {"time_zone": "Europe/Moscow"}}) == "02.12.2026"
    assert render("{{ t | date }}", {"t": late.isoformat(),
                                     "customer": {"time_zone": "America/New_York"}}) == "01.12.2026"
    assert render("{{ n | points }}", {"n": 12500, "customer": {"locale": "en"}}) == "12,500"


async def test_the_burn_sweep_runs_as_a_schedule(dev_server: WorkflowEnvironment,
                                                 settings: Settings, task_queue: str) -> None:
    settings.temporal.task_queue = task_queue
    settings.loyalty.expiry_sweep_seconds = 600
    await ensure_schedules(dev_server.client, task_queue, settings)
    settings.loyalty.expiry_sweep_seconds = 900
    await ensure_schedules(dev_server.client, task_queue, settings)  # a restart updates it

    handle = dev_server.client.get_schedule_handle("tropa-loyalty-expiry")
    try:
        described = await handle.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(seconds=900)
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("LoyaltyExpirySweep", task_queue)
    finally:
        await handle.delete()

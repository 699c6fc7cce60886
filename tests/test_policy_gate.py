"""The policy gate: consent, quiet hours in the customer's zone, frequency caps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.temporal import time_skipping_server
from tests.support.waiting import eventually
from tropa.dsl.plan import RunStatus
from tropa.settings import Settings


@pytest.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this module's own: runs other modules leave behind (with timers and
    no worker) would otherwise hold the shared server's clock when these tests move it."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        yield h


async def test_marketing_needs_consent_per_channel_service_does_not(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish("""
journey: promo
trigger: {event: promo}
steps:
  - send: {channel: sms, text: "Sale!"}
  - send: {channel: email, subject: "Sale", text: "Sale!"}
  - send: {channel: sms, category: service, text: "Your code 1234"}
""")
    add_customer(harness.engine, "c-1", consents={"marketing": {"email": True}})
    await harness.fire("promo", "c-1")

    status = await harness.finish("journey/promo/c-1")

    assert [(s.outcome, s.detail) for s in status.steps] == [
        ("suppressed", "no_consent"), ("accepted", "accepted via email"),
        ("accepted", "accepted via sms")]
    assert [(m["channel"], m["text"]) for m in sandbox.sent()] == [
        ("email", "Sale!"), ("sms", "Your code 1234")]
    suppressed = messages(harness.engine)[0]
    assert (suppressed.status, suppressed.reason) == ("suppressed", "no_consent")


async def test_quiet_hours_make_the_send_wait_for_the_window(
        harness: Harness, sandbox: SandboxServer, time_skipping: WorkflowEnvironment) -> None:
    zone = ZoneInfo("Asia/Vladivostok")
    # The session's test server may be days ahead of the wall clock after other tests.
    local = (await time_skipping.get_current_time()).astimezone(zone)
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=3)).strftime("%H:%M")
    harness.publish(f"""
journey: night
trigger: {{event: promo}}
steps:
  - send: {{channel: sms, text: "Good morning", quiet_hours: {{from: "{start}", to: "{end}"}}}}
""")
    add_customer(harness.engine, "c-1", time_zone="Asia/Vladivostok")
    await harness.fire("promo", "c-1")
    assert (await harness.status("journey/night/c-1")).current_step == "1-send"

    await time_skipping.sleep(timedelta(hours=3, minutes=5))
    status = await _ended(harness, "journey/night/c-1")

    step = status.steps[0]
    assert step.outcome == "accepted"
    waited = step.finished_at - step.started_at  # type: ignore[operator]
    assert timedelta(hours=2, minutes=58) <= waited <= timedelta(hours=3, minutes=1)
    assert step.finished_at.astimezone(zone).strftime("%H:%M") == end  # type: ignore[union-attr]
    assert len(sandbox.sent("sms")) == 1


async def test_frequency_cap_counts_across_journeys_and_frees_up_after_the_window(
        harness: Harness, sandbox: SandboxServer, time_skipping: WorkflowEnvironment) -> None:
    for name in ("a", "b"):
        harness.publish(f"""
journey: promo-{name}
trigger: {{event: promo}}
steps:
  - send: {{channel: sms, text: "{name} 1"}}
  - wait: 1h
  - send: {{channel: sms, text: "{name} 2"}}
""")
    add_customer(harness.engine, "c-1")
    await harness.fire("promo", "c-1")
    await time_skipping.sleep(timedelta(hours=2))
    first = await _ended(harness, "journey/promo-a/c-1")
    second = await _ended(harness, "journey/promo-b/c-1")

    outcomes = sorted(s.outcome for s in [*first.steps, *second.steps] if s.type == "send")
    assert outcomes == ["accepted", "accepted", "accepted", "suppressed"]
    assert len(sandbox.sent("sms")) == 3
    assert [m.reason for m in messages(harness.engine) if m.status == "suppressed"] == [
        "frequency_cap"]

    await time_skipping.sleep(timedelta(days=1))
    await harness.fire("promo", "c-1")
    await time_skipping.sleep(timedelta(hours=2))
    again = [await _ended(harness, f"journey/promo-{n}/c-1") for n in ("a", "b")]
    # A day later the window has moved on: three more go, the fourth is capped again.
    outcomes = sorted(s.outcome for run in again for s in run.steps if s.type == "send")
    assert outcomes == ["accepted", "accepted", "accepted", "suppressed"]
    assert len(sandbox.sent("sms")) == 6


async def _ended(harness: Harness, run: str) -> RunStatus:
    # Time is moved by explicit sleeps; the run's end is then read by query.
    async def ended() -> RunStatus | None:
        status = await harness.status(run)
        return status if status.state != "running" else None
    return await eventually(ended, message=f"{run} ended")

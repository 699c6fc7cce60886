"""Broadcasts on the time-skipping server with a real worker and the sandbox provider:
one message per recipient, holdout, consent and caps shared with journeys, a retried
delivery, local-time waves."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.broadcasts import (
    add_customers,
    progress_of,
    received,
    start,
    status_of,
    workers,
)
from tests.support.harness import running
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.broadcasts.waves import in_holdout, local_send_at
from tropa.channels.base import Accepted, OutgoingMessage
from tropa.channels.catalog import build_adapters
from tropa.errors import ProviderUnavailable
from tropa.settings import CapRule, Settings
from tropa.store.models import Message
from tropa.workflows.broadcast import Broadcast


async def _completed(engine: sa.Engine, broadcast_id: str) -> None:
    await eventually(lambda: status_of(engine, broadcast_id) == "completed",
                     message="broadcast completed")


async def test_every_recipient_gets_one_message_holdout_none_consent_and_caps_counted(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str) -> None:
    settings.delivery.rates = {}
    settings.broadcasts.page_size = 7  # several pages, and a continue-as-new or two
    # (below the settings' floor: a test only). Pages prepared ahead share workflow tasks,
    # so a page may add few events: 30 is passed well before the last page.
    settings.broadcasts.history_limit = 30
    settings.policy.caps = [CapRule(channel="*", category="marketing", max=1,
                                    window_seconds=86400)]
    ids = [f"c-{n:03d}" for n in range(40)]
    add_customers(engine, ids)
    add_customers(engine, ["c-no-consent"], consents={})
    add_customers(engine, ["c-outside"], tags=["other"])
    add_customer(engine, "c-capped", email="c-capped@example.com", tags=["bc"])
    async with running(time_skipping, engine, settings, task_queue) as harness:
        # A journey sends c-capped a marketing email first: the broadcast shares its cap.
        harness.publish("""
journey: welcome
trigger: {event: signup}
steps:
  - send: {channel: email, subject: Hello, text: Welcome}
""")
        await harness.fire("signup", "c-capped")
        # Polled, not awaited: nothing here needs the test server to skip time.
        await harness.ended("journey/welcome/c-capped")
        broadcast = await start(time_skipping, engine, settings, task_queue, holdout=25)
        await _completed(engine, broadcast.id)
        handle = time_skipping.client.get_workflow_handle(broadcast.workflow_id)
        state = await handle.query(Broadcast.state)

    audience = [*ids, "c-no-consent", "c-capped"]
    held = {c for c in audience if in_holdout(broadcast.id, c, 25)}
    assert 0 < len(held) < len(audience)
    suppressed = {reason: 1 for reason, c in (("no_consent", "c-no-consent"),
                                              ("frequency_cap", "c-capped")) if c not in held}
    expected = {f"{c}@example.com" for c in ids if c not in held}
    got = received(sandbox)
    assert got.pop("c-capped@example.com") == 1  # the journey's email, nothing more
    assert got == Counter(expected)  # each exactly once; holdout and outsiders none
    p = progress_of(engine, broadcast.id)
    assert (p.recipients, p.holdout, p.sent, p.queued, p.pending, p.failed) == (
        len(audience), len(held), len(expected), 0, 0, 0)
    assert p.suppressed == suppressed
    assert status_of(engine, broadcast.id) == "completed"
    memo = await (await handle.describe()).memo_value("progress")
    assert memo["state"] == "completed" and memo["recipients"] == len(audience)
    assert memo["sent"] == len(expected) and memo["suppressed"] == suppressed
    assert state.continued >= 1  # the history was kept short


class LosesOneAnswer:
    """The real email adapter, except that the provider's first answer for one address is
    lost, as when a worker dies after the provider took the message."""

    def __init__(self, inner: Any, address: str) -> None:
        self.inner = inner
        self.address = address
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def validate(self, message: OutgoingMessage) -> None:
        self.inner.validate(message)

    def send(self, message: OutgoingMessage) -> Accepted:
        accepted: Accepted = self.inner.send(message)
        if message.recipient == self.address and not self.lost:
            self.lost = True
            raise ProviderUnavailable("connection reset after the send", reason="network")
        return accepted


async def test_a_retried_delivery_sends_nothing_twice(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str) -> None:
    settings.delivery.rates = {}
    settings.delivery.retry_initial_seconds = 1
    ids = [f"r-{n:02d}" for n in range(12)]
    add_customers(engine, ids)
    adapters = build_adapters(settings, httpx.Client(timeout=10))
    flaky = LosesOneAnswer(adapters["email"], "r-05@example.com")
    adapters["email"] = flaky
    async with workers(time_skipping, engine, settings, task_queue, adapters):
        broadcast = await start(time_skipping, engine, settings, task_queue)
        await _completed(engine, broadcast.id)

    assert flaky.lost
    assert received(sandbox) == Counter(f"{c}@example.com" for c in ids)
    calls = Counter(str(c["to"]) for c in sandbox.box.calls)
    # The batch was retried: only the message whose answer was lost went out again, under
    # its key (the provider answered with the same message).
    assert calls.pop("r-05@example.com") == 2
    assert set(calls.values()) == {1}
    assert progress_of(engine, broadcast.id).sent == len(ids)


ZONES = ("Asia/Tokyo", "Europe/Moscow", "America/New_York")


def _safe(zone: str) -> str:
    """A zone name as a customer id part (and an email local part)."""
    return zone.replace("/", ".")


async def test_in_local_time_sends_waves_at_ten_in_each_zone(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str) -> None:
    # The channel's rate limit stays on: one message per deliver activity.
    for zone in ZONES:
        add_customers(engine, [f"{_safe(zone)}-{n}" for n in range(2)], time_zone=zone)
    begun = await time_skipping.get_current_time()
    async with workers(time_skipping, engine, settings, task_queue):
        broadcast = await start(time_skipping, engine, settings, task_queue,
                                start={"in_local_time": "10:00"})
        await eventually(lambda: progress_of(engine, broadcast.id).recipients == 6,
                         message="snapshot taken")
        last = max(local_send_at(zone, "10:00", begun) for zone in ZONES)
        await time_skipping.sleep(last - begun + timedelta(minutes=1))
        await _completed(engine, broadcast.id)

    with Session(engine) as session:
        sent = list(session.exec(select(Message)))
    assert len(sent) == 6 and len(sandbox.sent()) == 6
    waves = set()
    for message in sent:
        zone = ZoneInfo(message.customer_id.rsplit("-", 1)[0].replace(".", "/"))
        local = message.created_at.astimezone(zone)
        assert (local.hour, local.minute) == (10, 0), (message.customer_id, local)
        assert begun <= message.created_at < begun + timedelta(days=1, minutes=1)
        waves.add(message.created_at.replace(second=0, microsecond=0))
    assert len(waves) == 3
    assert progress_of(engine, broadcast.id).sent == 6


async def _history_timers(env: WorkflowEnvironment, workflow_id: str) -> int:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.HasField("timer_fired_event_attributes"))


async def test_pause_holds_the_next_wave_resume_sends_it_cancel_leaves_the_rest_out(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str) -> None:
    from tropa.services import broadcasts as service

    settings.delivery.rates = {}
    zones = ("Asia/Tokyo", "Europe/London", "America/Los_Angeles")
    for zone in zones:
        add_customers(engine, [f"{_safe(zone)}-{n}" for n in range(2)], time_zone=zone)
    client = time_skipping.client
    async with workers(time_skipping, engine, settings, task_queue):
        broadcast = await start(time_skipping, engine, settings, task_queue,
                                start={"in_local_time": "10:00"})
        await eventually(lambda: progress_of(engine, broadcast.id).recipients == 6,
                         message="snapshot taken")
        now = await time_skipping.get_current_time()
        waves = sorted((local_send_at(z, "10:00", now), z) for z in zones)

        async def until_sent(n: int) -> None:
            await eventually(lambda: len(sandbox.sent()) == n, message=f"{n} sent")

        await time_skipping.sleep(waves[0][0] - now + timedelta(minutes=1))
        await until_sent(2)
        await service.control(engine, client, broadcast.id, "pause")
        assert status_of(engine, broadcast.id) == "paused"
        await time_skipping.sleep(waves[1][0] - waves[0][0] + timedelta(minutes=1))
        # The second wave's timer has fired; paused, the workflow sends nothing.
        async def second_timer_fired() -> bool:
            return await _history_timers(time_skipping, broadcast.workflow_id) >= 2

        await eventually(second_timer_fired, message="second wave timer fired")
        assert len(sandbox.sent()) == 2
        assert progress_of(engine, broadcast.id).pending == 4
        await service.control(engine, client, broadcast.id, "resume")
        await until_sent(4)
        await service.control(engine, client, broadcast.id, "cancel")
        await eventually(lambda: status_of(engine, broadcast.id) == "cancelled",
                         message="cancelled")
        await eventually(lambda: progress_of(engine, broadcast.id).cancelled == 2,
                         message="the last wave left out")

    p = progress_of(engine, broadcast.id)
    assert (p.sent, p.cancelled, p.pending) == (4, 2, 0)
    assert status_of(engine, broadcast.id) == "cancelled"
    left_out = _safe(waves[2][1]).lower()
    assert not any(str(m["to"]).lower().startswith(left_out) for m in sandbox.sent())

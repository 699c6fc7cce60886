"""SMS retried until delivered (seed 001): only a wrong message is cancelled, never retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.sandbox.app import Faults
from tropa.settings import Settings

ORDER = """
journey: order-ready
settings: {category: service}
trigger: {event: order.ready}
steps:
  - send: {channel: sms, text: "{{ event.data.text }}"}
"""
RUN = "journey/order-ready/c-1"


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    settings.delivery.retry_initial_seconds = 1
    settings.delivery.retry_max_interval_seconds = 3600
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        h.publish(ORDER)
        yield h


async def test_provider_down_three_days_then_back_delivers_exactly_once(
        harness: Harness, sandbox: SandboxServer, time_skipping: WorkflowEnvironment) -> None:
    sandbox.box.faults = Faults(down=True)
    add_customer(harness.engine, "c-1", phone="8 (916) 123-45-67")
    await harness.fire("order.ready", "c-1", {"text": "Your order is ready"})
    await eventually(lambda: len(sandbox.box.calls) >= 2, message="first attempts")

    await time_skipping.sleep(timedelta(days=3))

    assert sandbox.sent() == []
    assert len(sandbox.box.calls) > 10
    assert (await harness.status(RUN)).current_step == "1-send"
    assert messages(harness.engine)[0].status == "retrying"
    sandbox.box.faults = Faults()
    status = await harness.finish(RUN)

    assert [(s.outcome, s.detail) for s in status.steps] == [("accepted", "accepted via sms")]
    sent = sandbox.sent("sms")
    assert [(m["to"], m["text"]) for m in sent] == [("+79161234567", "Your order is ready")]
    row = messages(harness.engine)[0]
    assert (row.status, row.provider_message_id) == ("accepted", sent[0]["message_id"])


async def test_unregistered_sender_name_fixed_later_delivers_once(
        harness: Harness, sandbox: SandboxServer, time_skipping: WorkflowEnvironment) -> None:
    sandbox.box.faults = Faults(account_error="sender_not_registered")
    add_customer(harness.engine, "c-1")
    await harness.fire("order.ready", "c-1", {"text": "Ready"})
    await eventually(lambda: len(sandbox.box.calls) >= 2, message="first attempts")
    await time_skipping.sleep(timedelta(hours=6))
    row = messages(harness.engine)[0]
    assert (row.status, row.reason) == ("retrying", "sender_not_registered")

    sandbox.box.faults = Faults()
    status = await harness.finish(RUN)

    assert status.steps[0].outcome == "accepted"
    assert len(sandbox.sent("sms")) == 1


async def test_number_the_provider_rejects_is_cancelled_after_one_call(
        harness: Harness, sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(reject_numbers=["+79161234567"])
    add_customer(harness.engine, "c-1")
    await harness.fire("order.ready", "c-1", {"text": "Ready"})

    status = await harness.finish(RUN)

    assert (status.state, status.steps[0].outcome) == ("completed", "cancelled")
    assert status.steps[0].detail == "invalid_recipient"
    assert len(sandbox.box.calls) == 1
    row = messages(harness.engine)[0]
    assert (row.status, row.reason) == ("cancelled", "invalid_recipient")


@pytest.mark.parametrize(("phone", "text", "reason"), [
    ("+7 916 12", "Ready", "invalid_recipient"),
    ("+79161234567", "   ", "empty_text"),
    ("+79161234567", "Ваш заказ готов, " * 30, "text_too_long"),
], ids=["bad-number", "empty-text", "too-long-cyrillic"])
async def test_wrong_message_is_cancelled_without_any_provider_call(
        harness: Harness, sandbox: SandboxServer, phone: str, text: str, reason: str) -> None:
    add_customer(harness.engine, "c-1", phone=phone)
    await harness.fire("order.ready", "c-1", {"text": text})

    status = await harness.finish(RUN)

    assert (status.steps[0].outcome, status.steps[0].detail) == ("cancelled", reason)
    assert sandbox.box.calls == []
    assert messages(harness.engine)[0].reason == reason

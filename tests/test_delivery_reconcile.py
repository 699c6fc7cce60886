"""A send waiting for a receipt never waits in silence.

When a worker dies between the provider's accept and Tropa's commit, the repeated call gets
the provider's existing message id and no new receipt; the receipt the provider posted in
between was refused (Tropa did not know the id yet). Tropa keeps such early receipts and the
deliver phase takes them when it commits the id; a receipt that never comes ends the step
`sent_unconfirmed` after `receipt_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.channels.base import OutgoingMessage
from tropa.sandbox.app import Faults
from tropa.settings import Settings

CODE = """
journey: pay-link
settings: {category: service}
trigger: {event: order.awaiting_payment}
steps:
  - send: {channel: sms, text: "Pay here"}
"""
RUN = "journey/pay-link/c-1"
ENDS_WITHIN = 90


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    # Retries far apart in real time: the test acts between two attempts.
    settings.delivery.retry_initial_seconds = 600
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        h.publish(CODE)
        add_customer(h.engine, "c-1", phone="+79161234567")
        yield h


async def test_a_receipt_posted_before_the_commit_reaches_the_run(
        harness: Harness, sandbox: SandboxServer, settings: Settings) -> None:
    # The provider posts each receipt once (many retry for hours; some do not).
    sandbox.box.faults = Faults(down=True, receipt_attempts=1)
    await harness.fire("order.awaiting_payment", "c-1")
    await eventually(lambda: sandbox.box.calls, message="first attempt")
    key = messages(harness.engine)[0].idempotency_key

    # What a worker killed mid-call leaves behind: the provider took the message under the
    # call's key and posted its receipt while Tropa had not committed the id.
    ref = OutgoingMessage(idempotency_key=key, channel="sms", category="service",
                          recipient="+79161234567", text="Pay here").provider_ref()
    sandbox.box.faults = Faults(receipt="none", receipt_attempts=1)
    taken = sandbox.box.accept("sms", ref, {"shape": "vonage", "from": "Tropa",
                                            "to": "+79161234567", "text": "Pay here"})
    assert taken.record is not None
    receipts = f"{settings.delivery.receipts_base_url}/v1/providers/vonage/receipts"
    async with httpx.AsyncClient() as client:
        posted = await client.post(f"{sandbox.url}/sandbox/receipts", json={
            "message_id": taken.record["message_id"], "status": "delivered", "url": receipts})
    assert posted.status_code == 202
    await eventually(lambda: sandbox.box.receipts_posted, message="receipt posted once")

    # The repeated call gets the existing id and no new receipt.
    status = await asyncio.wait_for(harness.finish(RUN), ENDS_WITHIN)

    assert (status.steps[0].outcome, status.steps[0].detail) == ("delivered", "delivered via sms")
    assert len(sandbox.sent("sms")) == 1
    assert messages(harness.engine)[0].status == "delivered"


async def test_no_receipt_at_all_ends_the_step_sent_unconfirmed(
        harness: Harness, sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(receipt="none")
    await harness.fire("order.awaiting_payment", "c-1")

    status = await asyncio.wait_for(harness.finish(RUN), ENDS_WITHIN)

    assert (status.steps[0].outcome, status.steps[0].detail) == (
        "sent_unconfirmed", "sent_unconfirmed via sms (no receipt within receipt_timeout)")
    assert len(sandbox.sent("sms")) == 1

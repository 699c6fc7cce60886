"""Receipts reach the waiting run by provider message id; undelivered retries; fallback."""

from __future__ import annotations

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
from tropa.delivery.callback import callback_token
from tropa.dsl.plan import RunStatus
from tropa.sandbox.app import Faults
from tropa.settings import Settings

CODE = """
journey: pay-link
settings: {category: service}
trigger: {event: order.awaiting_payment}
steps:
  - send: {channel: sms, text: "Pay here: {{ event.data.url }}"}
"""
FALLBACK = """
journey: last-call
settings: {category: service}
trigger: {event: cart.idle}
steps:
  - send: {channel: sms, text: "Last call", fallback: [email], deliver_within: 1h,
           subject: "Last call"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    settings.delivery.redeliver_after_seconds = 0.5
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        h.publish(CODE)
        h.publish(FALLBACK)
        add_customer(h.engine, "c-1")
        yield h


async def _ended(harness: Harness, run: str) -> RunStatus:
    # Time stays locked: receipts come over real HTTP, so the run must not skip ahead.
    async def ended() -> RunStatus | None:
        status = await harness.status(run)
        return status if status.state != "running" else None
    return await eventually(ended, message=f"{run} ended")


async def test_delivered_receipt_reaches_the_run(harness: Harness, sandbox: SandboxServer
                                                 ) -> None:
    await harness.fire("order.awaiting_payment", "c-1", {"url": "https://pay/1"})

    status = await _ended(harness, "journey/pay-link/c-1")

    assert (status.steps[0].outcome, status.steps[0].detail) == ("delivered", "delivered via sms")
    sent = sandbox.sent("sms")
    assert len(sent) == 1
    assert sent[0]["callback"].split("?")[0].endswith("/v1/providers/vonage/receipts")
    assert messages(harness.engine)[0].status == "delivered"


async def test_undelivered_receipt_leads_to_a_new_attempt(harness: Harness,
                                                          sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(undelivered_receipts=1)
    await harness.fire("order.awaiting_payment", "c-1", {"url": "https://pay/2"})

    status = await _ended(harness, "journey/pay-link/c-1")

    assert status.steps[0].outcome == "delivered"
    sent = sandbox.sent("sms")
    assert len(sent) == 2 and sent[0]["idempotency_key"] != sent[1]["idempotency_key"]
    assert [m["status"] for m in sent] == ["undelivered", "delivered"]


async def test_rejected_receipt_falls_back_to_email(harness: Harness, sandbox: SandboxServer
                                                    ) -> None:
    sandbox.box.faults = Faults(receipt="rejected")
    await harness.fire("cart.idle", "c-1")

    status = await _ended(harness, "journey/last-call/c-1")

    assert status.steps[0].outcome == "accepted"
    assert status.steps[0].detail == ("accepted via email after sms: rejected "
                                      "(vonage_rejected_6)")
    assert [m["channel"] for m in sandbox.sent()] == ["sms", "email"]


async def test_no_receipt_within_deliver_within_falls_back(harness: Harness,
                                                           sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(receipt="none")
    await harness.fire("cart.idle", "c-1")
    await eventually(lambda: sandbox.sent("sms"), message="sms accepted")

    status = await harness.finish("journey/last-call/c-1")

    assert status.steps[0].detail.startswith("accepted via email after sms: not_delivered")
    waited = status.steps[0].finished_at - status.steps[0].started_at  # type: ignore[operator]
    assert waited.total_seconds() >= 3600


@pytest.mark.usefixtures("harness")
async def test_unsigned_or_unknown_receipts_are_refused(settings: Settings,
                                                        sandbox: SandboxServer) -> None:
    url = f"{settings.delivery.receipts_base_url}/v1/providers/vonage/receipts"
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(url, json={"messageId": "x", "status": "delivered"})
        raw = b'{"messageId": "nope", "status": "delivered"}'
        unknown = await client.post(url, content=raw, headers={
            "X-Tropa-Signature": sandbox.box.sign(raw), "Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unknown.status_code == 404


@pytest.mark.usefixtures("harness")
async def test_receipts_posted_to_the_callback_url_are_taken_without_a_signature(
        settings: Settings) -> None:
    # Vonage posts receipts unsigned, to the callback URL Tropa handed it with the message.
    secret = settings.delivery.receipts_secret.get_secret_value()
    url = f"{settings.delivery.receipts_base_url}/v1/providers/vonage/receipts"
    body = {"messageId": "nope", "status": "delivered"}
    async with httpx.AsyncClient() as client:
        with_token = await client.post(
            url, params={"m": 1, "token": callback_token(secret, "vonage", 1)}, json=body)
        other_provider = await client.post(
            url, params={"m": 1, "token": callback_token(secret, "whatsapp", 1)}, json=body)
        forged = await client.post(url, params={"m": 1, "token": "0" * 32}, json=body)
    assert with_token.status_code == 404  # authenticated; the message id is simply unknown
    assert other_provider.status_code == 401
    assert forged.status_code == 401


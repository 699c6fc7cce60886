"""Receipts cannot be forged or misdirected: callback tokens per message, receipts matched by
provider and provider message id, tokens out of listings and access logs; a channel without
a provider is not silently the sandbox."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.api import make_app, make_key
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.servers import free_port, serve
from tests.support.waiting import eventually
from tropa.dsl.plan import RunStatus
from tropa.sandbox.app import Faults, Sandbox, create_sandbox_app
from tropa.settings import Settings

PAY = """
journey: pay-link
settings: {category: service}
trigger: {event: order.awaiting_payment}
steps:
  - send: {channel: sms, text: "Pay here: {{ event.data.url }}"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str, sandbox: SandboxServer) -> AsyncIterator[Harness]:
    sandbox.box.faults = Faults(receipt="none")  # the test posts the receipts itself
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        h.publish(PAY)
        add_customer(h.engine, "c-1")
        add_customer(h.engine, "c-2", phone="+79169876543")
        yield h


async def _ended(harness: Harness, run: str, timeout: float = 30) -> RunStatus:
    # Time stays locked: receipts come over real HTTP, so the run must not skip ahead.
    async def ended() -> RunStatus | None:
        status = await harness.status(run)
        return status if status.state != "running" else None
    return await eventually(ended, timeout=timeout, message=f"{run} ended")


def _vonage(message_id: str, status: str = "delivered") -> dict[str, str]:
    return {"messageId": message_id, "status": status, "err-code": "0"}


async def test_a_callback_token_speaks_for_its_own_message_only(
        harness: Harness, sandbox: SandboxServer) -> None:
    for customer in ("c-1", "c-2"):
        await harness.fire("order.awaiting_payment", customer, {"url": "https://pay"})
    sent = await eventually(lambda: sandbox.sent("sms") if len(sandbox.sent("sms")) == 2
                            else None)
    # The two runs send in either order: tell their messages apart by c-2's phone.
    (second,) = [m for m in sent if m["to"] == "+79169876543"]
    (first,) = [m for m in sent if m is not second]
    callback_1, callback_2 = str(first["callback"]), str(second["callback"])
    assert parse_qs(urlsplit(callback_1).query)["token"] != \
        parse_qs(urlsplit(callback_2).query)["token"]
    token_1 = parse_qs(urlsplit(callback_1).query)["token"][0]
    message_2 = parse_qs(urlsplit(callback_2).query)["m"][0]
    base = callback_1.split("?")[0]

    async with httpx.AsyncClient() as client:
        # The first message's URL (say, leaked from a log) cannot mark the second one.
        misdirected = await client.post(callback_1, json=_vonage(str(second["message_id"]),
                                                                 "rejected"))
        swapped = await client.post(base, params={"m": message_2, "token": token_1},
                                    json=_vonage(str(second["message_id"]), "rejected"))
        own = await client.post(callback_2, json=_vonage(str(second["message_id"])))

    assert misdirected.status_code == 404
    assert swapped.status_code == 401
    assert own.status_code == 200, own.text
    status = await _ended(harness, "journey/pay-link/c-2")
    assert (status.steps[0].outcome, status.steps[0].detail) == ("delivered", "delivered via sms")
    assert (await harness.status("journey/pay-link/c-1")).state == "running"


async def test_a_receipt_of_another_provider_with_the_same_id_changes_nothing(
        harness: Harness, sandbox: SandboxServer, settings: Settings) -> None:
    await harness.fire("order.awaiting_payment", "c-1", {"url": "https://pay"})
    (sent,) = await eventually(lambda: sandbox.sent("sms"))
    await eventually(lambda: messages(harness.engine)[0].provider_message_id)
    raw = json.dumps({"message_id": sent["message_id"], "status": "rejected"}).encode()
    url = f"{settings.delivery.receipts_base_url}/v1/providers/generic/receipts"

    async with httpx.AsyncClient() as client:
        generic = await client.post(url, content=raw, headers={
            "X-Tropa-Signature": sandbox.box.sign(raw), "Content-Type": "application/json"})

    assert generic.status_code == 404
    (message,) = messages(harness.engine)
    assert (message.status, message.provider) == ("accepted", "vonage")
    assert (await harness.status("journey/pay-link/c-1")).state == "running"


async def test_ids_reused_after_a_provider_restart_reach_the_new_message(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    port = free_port()
    settings.providers.sms_url = f"http://127.0.0.1:{port}"
    settings.delivery.retry_initial_seconds = 0.1
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        h.publish(PAY)
        add_customer(engine, "c-1")
        add_customer(engine, "c-2", phone="+79169876543")
        before, after = Sandbox(), Sandbox()
        with serve(create_sandbox_app(before), port=port):
            await h.fire("order.awaiting_payment", "c-1", {"url": "https://pay"})
            assert (await _ended(h, "journey/pay-link/c-1")).steps[0].outcome == "delivered"
        # A restarted provider counts its ids from the start again.
        with serve(create_sandbox_app(after), port=port):
            await h.fire("order.awaiting_payment", "c-2", {"url": "https://pay"})
            status = await _ended(h, "journey/pay-link/c-2", timeout=20)

    assert before.messages[0]["message_id"] == after.messages[0]["message_id"]
    assert (status.steps[0].outcome, status.steps[0].detail) == ("delivered", "delivered via sms")
    assert [m.status for m in messages(engine)] == ["delivered", "delivered"]


async def test_the_open_sandbox_listing_shows_no_tokens(
        harness: Harness, sandbox: SandboxServer) -> None:
    await harness.fire("order.awaiting_payment", "c-1", {"url": "https://pay"})
    await eventually(lambda: sandbox.sent("sms"))

    async with httpx.AsyncClient() as client:
        listing = await client.get(f"{sandbox.url}/sandbox/messages")

    assert listing.status_code == 200
    (shown,) = listing.json()
    assert shown["callback"].endswith("/v1/providers/vonage/receipts")
    assert "token" not in listing.text


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def access_log() -> Iterator[_Lines]:
    """The lines uvicorn's access logger writes while the block runs."""
    handler = _Lines()
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_access_logs_have_no_query_strings(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    app = make_app(time_skipping.client, engine, settings, task_queue)
    key = make_key(engine)
    # At INFO, as `tropa api` runs uvicorn (which sets its loggers up as it starts).
    with serve(app, log_level="info") as url, access_log() as lines:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client:
            await client.get("/v1/customers", params={"phone": "+79161234567"})
            await client.post("/v1/providers/vonage/receipts",
                              params={"m": 7, "token": "secret-token-value"}, json={})
            await client.get("/v1/unsubscribe", params={"t": "c-1.email.feedface"})

    text = "\n".join(lines.lines)
    assert "GET /v1/customers HTTP" in text and "POST /v1/providers/vonage/receipts" in text
    assert "GET /v1/unsubscribe HTTP" in text
    for secret in ("79161234567", "secret-token-value", "feedface", "?"):
        assert secret not in text


async def test_a_channel_without_a_provider_url_is_not_configured(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str, sandbox: SandboxServer) -> None:
    # The sandbox listens where an empty URL used to lead; nothing may reach it.
    settings.sandbox.port = int(sandbox.url.rsplit(":", 1)[1])
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        h.publish("""
journey: wa
settings: {category: service}
trigger: {event: go}
steps:
  - send: {channel: whatsapp, text: "Hi", fallback: [sms]}
""")
        add_customer(engine, "c-1")
        await h.fire("go", "c-1")
        status = await _ended(h, "journey/wa/c-1")

    assert status.steps[0].outcome == "accepted"
    assert status.steps[0].detail == "accepted via sms after whatsapp: cancelled " \
        "(channel_not_configured)"
    assert [m["channel"] for m in sandbox.sent()] == ["sms"]
    whatsapp = next(m for m in messages(engine) if m.channel == "whatsapp")
    assert (whatsapp.status, whatsapp.reason) == ("cancelled", "channel_not_configured")
    assert "TROPA_PROVIDER_WHATSAPP_URL" in whatsapp.history[-1]["detail"]

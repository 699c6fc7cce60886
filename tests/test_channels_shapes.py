"""Each channel speaks its provider's protocol: SMTP (real aiosmtpd), WhatsApp, Telegram,
FCM push, voice, flash call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.smtp import Inbox, smtp_server
from tropa.settings import Settings


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str, sandbox: SandboxServer, smtp: tuple[Inbox, int]
                  ) -> AsyncIterator[Harness]:
    p = settings.providers
    p.email_transport, p.smtp_port = "smtp", smtp[1]
    p.whatsapp_url = p.telegram_url = p.push_url = p.voice_url = sandbox.url
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        yield h


async def test_marketing_email_over_smtp_has_parts_and_list_unsubscribe(
        harness: Harness, smtp: tuple[Inbox, int]) -> None:
    harness.publish("""
journey: news
trigger: {event: promo}
steps:
  - send: {channel: email, subject: "Привет, {{ customer.first_name }}", text: "Sale",
           html: "<b>Sale</b>"}
  - send: {channel: email, category: service, subject: "Receipt", text: "Paid"}
""")
    add_customer(harness.engine, "c-1")
    await harness.fire("promo", "c-1")
    status = await harness.finish("journey/news/c-1")

    assert [s.outcome for s in status.steps] == ["accepted", "accepted"]
    (to, mail), (_, service) = smtp[0].mails
    assert to == ["anna@example.com"] and mail["Subject"] == "Привет, Anna"
    assert mail.is_multipart()
    assert [p.get_content_type() for p in mail.walk()][1:] == ["text/plain", "text/html"]
    assert "<https://" in mail["List-Unsubscribe"] or "<http://" in mail["List-Unsubscribe"]
    assert "anna" not in mail["List-Unsubscribe"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert service["List-Unsubscribe"] is None


async def test_whatsapp_template_goes_free_text_outside_window_is_cancelled(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish("""
journey: wa
trigger: {event: cart}
settings: {category: service}
steps:
  - send: {channel: whatsapp, template: cart_last_call,
           template_params: ["{{ customer.first_name }}"]}
  - send: {channel: whatsapp, text: "Hi"}
""")
    add_customer(harness.engine, "c-1")
    await harness.fire("cart", "c-1")
    status = await harness.finish("journey/wa/c-1")

    assert [(s.outcome, s.detail) for s in status.steps] == [
        ("accepted", "accepted via whatsapp"), ("cancelled", "template_required")]
    (sent,) = sandbox.sent("whatsapp")
    assert sent["template"] == {"name": "cart_last_call", "language": {"code": "ru"},
                                "components": [{"type": "body", "parameters": [
                                    {"type": "text", "text": "Anna"}]}]}


async def test_telegram_push_voice_and_flash_call(harness: Harness, sandbox: SandboxServer
                                                  ) -> None:
    harness.publish("""
journey: many
trigger: {event: go}
settings: {category: service}
steps:
  - send: {channel: telegram, text: "Order shipped"}
  - send: {channel: push, subject: "Shipped", text: "Order shipped"}
  - send: {channel: voice, text: "Your order is waiting"}
  - send: {channel: flash_call}
""")
    add_customer(harness.engine, "c-1", attributes={"telegram_chat_id": "5551",
                                                    "push_token": "fcm-token-1"})
    await harness.fire("go", "c-1")
    status = await harness.finish("journey/many/c-1")

    assert [s.outcome for s in status.steps] == ["accepted"] * 4
    assert [(m["channel"], m["to"], m["text"]) for m in sandbox.sent()] == [
        ("telegram", "5551", "Order shipped"), ("push", "fcm-token-1", "Order shipped"),
        ("voice", "+79161234567", "Your order is waiting"), ("flash_call", "+79161234567", "")]
    assert sandbox.sent("push")[0]["title"] == "Shipped"

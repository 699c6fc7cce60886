"""Errors no retry can fix end the step at once, with the reason; only transient ones retry.

Rendered sizes are bounded before the message log (a subject over its column used to fail
the prepare activity for ever on PostgreSQL; a 10 MB text was stored though cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.servers import serve
from tropa.channels.base import raise_for_provider
from tropa.delivery import limits
from tropa.errors import ProviderError
from tropa.settings import Settings

MAIL = """
journey: mail-{name}
settings: {{category: service}}
trigger: {{event: mail.{name}}}
steps:
  - send:
      channel: email
      subject: "{subject}"
      text: "{text}"
"""
# Bounded waits: on the code before this change these runs never ended.
ENDS_WITHIN = 90


def mail(name: str, subject: str = "Hello {{ customer.first_name }}",
         text: str = "Your order is ready") -> str:
    return MAIL.format(name=name, subject=subject, text=text)


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    settings.delivery.retry_initial_seconds = 1
    settings.delivery.retry_max_interval_seconds = 60
    async with delivering(time_skipping, engine, settings, task_queue) as h:
        yield h


async def _finish(harness: Harness, workflow_id: str):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(harness.finish(workflow_id), ENDS_WITHIN)


async def test_a_name_with_a_line_break_in_the_subject_is_cancelled_not_sent(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(mail("nl"))
    add_customer(harness.engine, "c-1", first_name="Olga\nBcc: all@example.com")
    await harness.fire("mail.nl", "c-1")

    status = await _finish(harness, "journey/mail-nl/c-1")

    assert (status.steps[0].outcome, status.steps[0].detail) == ("cancelled", "invalid_header")
    assert sandbox.box.calls == []
    assert messages(harness.engine)[0].reason == "invalid_header"


async def test_a_subject_over_its_bound_is_cancelled_on_both_databases(
        time_skipping: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str, sandbox: SandboxServer) -> None:
    async with delivering(time_skipping, any_engine, settings, task_queue) as harness:
        harness.publish(mail("long", subject="{{ event.data.subject }}"))
        add_customer(any_engine, "c-1")
        await harness.fire("mail.long", "c-1", {"subject": "Sale! " * 120})

        status = await _finish(harness, "journey/mail-long/c-1")

        assert (status.steps[0].outcome, status.steps[0].detail) == (
            "cancelled", "subject_too_long")
        row = messages(any_engine)[0]
        assert row.status == "cancelled"
        assert row.subject is not None and len(row.subject) <= limits.SUBJECT_MAX
        assert sandbox.box.calls == []


async def test_a_ten_megabyte_text_is_cancelled_and_not_stored(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(mail("huge", text="{{ event.data.chunk * 100 }}"))
    add_customer(harness.engine, "c-1")
    await harness.fire("mail.huge", "c-1", {"chunk": "x" * 100_000})

    status = await _finish(harness, "journey/mail-huge/c-1")

    assert status.steps[0].outcome == "cancelled"
    row = messages(harness.engine)[0]
    assert row.status == "cancelled"
    assert len(row.text) <= limits.STORED_PREVIEW
    assert sandbox.box.calls == []


class SilentProvider:
    """An email API that answers 200 to every send, without a message id."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/email/v1/messages")
        async def send(request: Request) -> dict[str, str]:
            await request.body()
            self.calls += 1
            return {"status": "ok"}

        return app


@pytest.fixture
def silent() -> Iterator[tuple[SilentProvider, str]]:
    provider = SilentProvider()
    with serve(provider.app()) as url:
        yield provider, url


async def test_a_provider_answering_200_without_an_id_fails_the_send_once(
        time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        task_queue: str, silent: tuple[SilentProvider, str]) -> None:
    provider, url = silent
    settings.providers.email_url = url
    settings.delivery.retry_initial_seconds = 1
    async with delivering(time_skipping, engine, settings, task_queue) as harness:
        harness.publish(mail("noid"))
        add_customer(harness.engine, "c-1")
        await harness.fire("mail.noid", "c-1")

        status = await _finish(harness, "journey/mail-noid/c-1")

    assert (status.steps[0].outcome, status.steps[0].detail) == ("failed", "no_message_id")
    assert provider.calls == 1
    row = messages(engine)[0]
    assert (row.status, row.reason) == ("failed", "no_message_id")


UPDATE = """
journey: tagger
trigger: {event: order.paid}
steps:
  - wait: 1m
  - update_customer: {add_tags: [buyer]}
"""


async def test_a_run_that_fails_says_which_step_and_why(harness: Harness) -> None:
    harness.publish(UPDATE)
    add_customer(harness.engine, "c-1")
    await harness.fire("order.paid", "c-1")
    # The store goes away for good while the run waits: the update can never finish.
    with harness.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE side_effects RENAME TO side_effects_gone"))
    try:
        with pytest.raises(WorkflowFailureError) as failed:
            await _finish(harness, "journey/tagger/c-1")
        status = await harness.status("journey/tagger/c-1")
    finally:
        with harness.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE side_effects_gone RENAME TO side_effects"))

    assert status.state == "failed"
    last = status.steps[-1]
    assert (last.step_id, last.outcome) == ("2-update_customer", "failed")
    assert "did not finish in time" in last.detail
    assert "2-update_customer" in str(failed.value.cause)


async def test_an_oversize_whatsapp_template_parameter_is_cancelled(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish("""
journey: wa-big
settings: {category: service}
trigger: {event: cart}
steps:
  - send: {channel: whatsapp, template: cart_last_call, template_params: ["{{ event.data.p }}"]}
""")
    add_customer(harness.engine, "c-1")
    await harness.fire("cart", "c-1", {"p": "y" * 5000})

    status = await _finish(harness, "journey/wa-big/c-1")

    assert (status.steps[0].outcome, status.steps[0].detail) == ("cancelled", "param_too_long")
    assert sandbox.box.calls == []


@pytest.mark.parametrize(("status", "final"), [
    (503, False), (500, False), (429, False), (401, False), (402, False), (403, False),
    (404, False), (409, False), (400, True), (422, True), (413, True), (415, True),
    (410, True)])
def test_only_transient_provider_answers_are_retried(status: int, final: bool) -> None:
    answer = httpx.Response(status, json={"error": {"code": f"c{status}", "message": "m"}})
    with pytest.raises(ProviderError) as raised:
        raise_for_provider(answer)
    assert raised.value.final is final


async def test_a_message_that_cannot_be_prepared_within_the_hour_fails_its_step(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish(mail("nodb"))
    add_customer(harness.engine, "c-1")
    with harness.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE messages RENAME TO messages_gone"))
    try:
        await harness.fire("mail.nodb", "c-1")
        status = await _finish(harness, "journey/mail-nodb/c-1")
    finally:
        with harness.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE messages_gone RENAME TO messages"))

    assert status.state == "completed"
    assert status.steps[0].outcome == "failed"
    assert status.steps[0].detail.startswith("prepare did not finish within 1:00:00")
    assert sandbox.box.calls == []

"""The `webhook` step on the time-skipping server, a real worker and a real receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.receiver import SECRET, Receiver
from tests.support.servers import serve
from tests.support.waiting import eventually
from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid
from tropa.settings import Settings


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    box = Receiver()
    with serve(box.app()) as url:
        yield box, url


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    settings.providers.webhook_secret = SecretStr(SECRET)
    settings.webhook.allowed_hosts = ["127.0.0.1"]  # the receiver runs on this machine
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


def cart_journey(base: str) -> str:
    return f"""
journey: cart-crm
trigger: {{event: cart.updated, key: "{{{{ event.data.cart_id }}}}"}}
settings: {{category: service}}
steps:
  - webhook:
      url: "{base}/hooks/cart"
      body:
        cart_id: "{{{{ event.data.cart_id }}}}"
        customer: "{{{{ customer.id }}}}"
        lines: [{{sku: "{{{{ event.data.sku }}}}", qty: 2}}]
      headers: {{X-Source: "tropa-{{{{ journey.name }}}}"}}
  - webhook:
      url: "{base}/hooks/{{{{ event.data.cart_id }}}}"
      method: PUT
      body:
        first_answer: "{{{{ steps.webhook.status_code if steps.webhook is defined else 'none' }}}}"
"""


async def test_signed_body_arrives_once_after_a_503_is_retried(
        harness: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    box.answers = [(503, "busy")]
    harness.publish(cart_journey(base))
    add_customer(harness.engine, "c-1")
    routed = await harness.fire("cart.updated", "c-1", {"cart_id": "k9", "sku": "A-1"})
    assert routed.started == ["journey/cart-crm/c-1/k9"]

    status = await harness.finish("journey/cart-crm/c-1/k9")

    assert status.state == "completed"
    assert [(r.step_id, r.outcome) for r in status.steps] == [
        ("1-webhook", "called"), ("2-webhook", "called")]
    # three raw calls (503, then the retry, then the PUT), every one signed
    assert [(c["name"], c["method"], c["signed"]) for c in box.calls] == [
        ("cart", "POST", True), ("cart", "POST", True), ("k9", "PUT", True)]
    assert box.calls[0]["key"] == box.calls[1]["key"]
    assert box.calls[0]["key"].endswith("/1-webhook")
    assert box.calls[0]["type"] == "application/json"
    assert box.calls[0]["source"] == "tropa-cart-crm"
    # each body once, rendered; the second step read the first one's status code
    assert [a["body"] for a in box.accepted.values()] == [
        {"cart_id": "k9", "customer": "c-1", "lines": [{"sku": "A-1", "qty": 2}]},
        {"first_answer": "200"}]
    history = (await harness.handle("journey/cart-crm/c-1/k9").fetch_history()).to_json()
    assert SECRET not in history
    assert SECRET not in json.dumps(status.model_dump(mode="json"))


async def test_a_400_answer_fails_the_step_with_the_reason_and_is_not_retried(
        harness: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    box.answers = [(400, "unknown cart k9")]
    harness.publish(cart_journey(base))
    add_customer(harness.engine, "c-2")
    await harness.fire("cart.updated", "c-2", {"cart_id": "k9", "sku": "A-1"})

    status = await harness.finish("journey/cart-crm/c-2/k9")

    first = status.steps[0]
    assert (first.step_id, first.outcome) == ("1-webhook", "failed")
    # the status only: the receiver's body may echo what it was sent
    assert first.detail == "WebhookRejected: Webhook answered 400 Bad Request"
    # the journey goes on; the failed call was made once
    assert [c["name"] for c in box.calls] == ["cart", "k9"]
    assert [a["body"] for a in box.accepted.values()] == [{"first_answer": "none"}]
    assert SECRET not in first.detail


async def test_a_receiver_that_is_down_is_retried_until_it_answers(
        harness: Harness, receiver: tuple[Receiver, str]) -> None:
    box, base = receiver
    box.answers = [(503, "down"), (429, "slow down"), (502, "bad gateway")]
    harness.publish(cart_journey(base))
    add_customer(harness.engine, "c-3")
    await harness.fire("cart.updated", "c-3", {"cart_id": "k3", "sku": "B-2"})

    await eventually(lambda: len(box.calls) >= 2, message="a retried webhook call")
    waiting = await harness.status("journey/cart-crm/c-3/k3")
    assert (waiting.state, waiting.current_step) == ("running", "1-webhook")
    status = await harness.finish("journey/cart-crm/c-3/k3")

    assert [r.outcome for r in status.steps] == ["called", "called"]
    assert len(box.calls) == 5
    assert len({c["key"] for c in box.calls[:4]}) == 1
    assert [a["body"]["cart_id"] for a in list(box.accepted.values())[:1]] == ["k3"]
    # backed off between attempts (1s, 2s, 4s)
    first = status.steps[0]
    assert first.finished_at is not None
    assert first.finished_at - first.started_at >= timedelta(seconds=7)


@pytest.mark.parametrize(("url", "wrong"), [
    ("ftp://crm.example.com/hooks", "URL scheme should be 'http' or 'https'"),
    ("crm.example.com/hooks", "relative URL without a base"),
    ("https://crm.example.com/{{ custmer.id }}", "unknown variable `custmer`"),
], ids=["scheme", "no-scheme", "template"])
def test_a_bad_url_is_refused_at_validation_naming_the_place_and_the_fix(
        url: str, wrong: str) -> None:
    text = f'journey: j\ntrigger: {{event: go}}\nsteps:\n  - webhook: {{url: "{url}"}}\n'
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(text, "j.yaml")

    messages = [p.render() for p in caught.value.problems]
    column = text.splitlines()[3].index('"') + 1
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"j.yaml:4:{column}: error: "), messages
    assert wrong in messages[0]
    if "{{" not in url:
        assert "e.g. https://crm.example.com/hooks/cart" in messages[0]


def test_body_and_headers_are_checked_at_validation() -> None:
    text = ("journey: j\ntrigger: {event: go}\nsteps:\n  - webhook:\n"
            "      url: https://crm.example.com/hooks\n"
            '      body: {lines: [{sku: "{{ evnt.data.sku }}"}]}\n'
            "      headers: {Idempotency-Key: mine}\n")
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(text, "j.yaml")

    messages = [p.render() for p in caught.value.problems]
    assert any(m.startswith("j.yaml:6:") and "at `lines[0].sku`: unknown variable `evnt`" in m
               for m in messages), messages
    assert any(m.startswith("j.yaml:7:") and "`Idempotency-Key` is set by Tropa" in m
               for m in messages), messages

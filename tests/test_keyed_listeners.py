"""Keyed listeners: in a journey with a trigger `key`, `exit_on` and `wait_for` reach only
the run whose key the event renders to (an `order.paid` of order 2 leaves order 1's run be).
On the time-skipping server with a real worker, events routed by the product's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid
from tropa.settings import Settings

PAYMENT = """
journey: pay
settings: {category: service}
trigger: {event: order.awaiting_payment, key: "{{ event.data.order_id }}"}
re_entry: ignore
exit_on: [order.cancelled]
steps:
  - wait_for:
      event: order.paid
      timeout: 1d
      on_timeout:
        - send: {channel: sms, text: "Order {{ event.data.order_id }} still awaits payment"}
  - send: {channel: sms, text: "Thanks for order {{ event.data.order_id }}"}
"""
ONE, TWO = "journey/pay/c-1/o1", "journey/pay/c-1/o2"

# The cart's id is `cart_id` in cart events and `cart.id` in orders: listeners say so.
CART = """
journey: cart
settings: {category: service}
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
exit_on:
  - {event: order.placed, key: "{{ event.data.cart.id }}"}
steps:
  - wait_for: {event: cart.viewed, key: "{{ event.data.viewed.cart }}", timeout: 1d}
  - send: {channel: sms, text: "Cart {{ event.data.cart_id }}: {{ steps.wait_for.received }}"}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        add_customer(h.engine, "c-1")
        yield h


async def _two_orders(harness: Harness) -> None:
    harness.publish(PAYMENT)
    for order in ("o1", "o2"):
        routed = await harness.fire("order.awaiting_payment", "c-1", {"order_id": order})
        assert routed.started == [f"journey/pay/c-1/{order}"]
    for run in (ONE, TWO):
        await harness.at(run, "1-wait_for")


async def test_a_payment_reaches_only_the_run_of_its_order(
        harness: Harness, sandbox: SandboxServer) -> None:
    await _two_orders(harness)

    routed = await harness.fire("order.paid", "c-1", {"order_id": "o2"})

    assert routed.signalled == [TWO]
    assert routed.skipped == []
    two = await harness.ended(TWO)
    assert two.state == "completed"
    assert [(s.step_id, s.outcome) for s in two.steps] == [
        ("1-wait_for", "received"), ("2-send", "accepted")]
    # order 1's run still waits for its own payment and times out without it
    assert (await harness.status(ONE)).current_step == "1-wait_for"
    one = await harness.finish(ONE)
    assert [(s.step_id, s.outcome) for s in one.steps] == [
        ("1-wait_for", "timed_out"), ("1-wait_for/on_timeout/1-send", "accepted"),
        ("2-send", "accepted")]
    assert sorted(m["text"] for m in sandbox.sent("sms")) == [
        "Order o1 still awaits payment", "Thanks for order o1", "Thanks for order o2"]


async def test_an_exit_event_ends_only_the_run_of_its_order(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    await _two_orders(harness)
    await time_skipping.sleep(timedelta(hours=2))

    routed = await harness.fire("order.cancelled", "c-1", {"order_id": "o1"})

    assert routed.signalled == [ONE]
    one = await harness.ended(ONE)
    assert (one.state, one.steps[-1].detail) == ("exited", "exit_on order.cancelled")
    assert (await harness.status(TWO)).state == "running"
    await harness.fire("order.paid", "c-1", {"order_id": "o2"})
    two = await harness.ended(TWO)
    assert (two.state, two.steps[0].outcome) == ("completed", "received")
    assert [m["text"] for m in sandbox.sent("sms")] == ["Thanks for order o2"]


async def test_events_of_unknown_or_missing_keys_reach_no_run(harness: Harness) -> None:
    await _two_orders(harness)

    unknown = await harness.fire("order.paid", "c-1", {"order_id": "o9"})
    keyless = await harness.fire("order.paid", "c-1", {"total": 990})

    assert (unknown.signalled, unknown.skipped) == ([], [])
    assert keyless.signalled == []
    assert len(keyless.skipped) == 1
    assert keyless.skipped[0]["journey"] == "pay"
    assert keyless.skipped[0]["reason"].startswith(
        "1-wait_for: the key cannot be rendered on this event")
    for run in (ONE, TWO):
        status = await harness.status(run)
        assert (status.state, status.current_step) == ("running", "1-wait_for")


async def test_listeners_with_keys_of_their_own(harness: Harness,
                                                sandbox: SandboxServer) -> None:
    harness.publish(CART)
    for cart in ("k1", "k2", "k3"):
        await harness.fire("cart.updated", "c-1", {"cart_id": cart})
        await harness.at(f"journey/cart/c-1/{cart}", "1-wait_for")

    placed = await harness.fire("order.placed", "c-1", {"order_id": "o1", "cart": {"id": "k1"}})
    viewed = await harness.fire("cart.viewed", "c-1", {"viewed": {"cart": "k2"}})
    other = await harness.fire("order.placed", "c-1", {"order_id": "o2"})  # no cart: no run

    assert placed.signalled == ["journey/cart/c-1/k1"]
    assert viewed.signalled == ["journey/cart/c-1/k2"]
    assert other.signalled == []
    assert [s["reason"][:46] for s in other.skipped] == [
        "exit_on[0]: the key cannot be rendered on this"]
    k1 = await harness.ended("journey/cart/c-1/k1")
    assert (k1.state, k1.steps[-1].detail) == ("exited", "exit_on order.placed")
    k2 = await harness.ended("journey/cart/c-1/k2")
    assert k2.state == "completed"
    assert [m["text"] for m in sandbox.sent("sms")] == ["Cart k2: True"]
    k3 = await harness.status("journey/cart/c-1/k3")
    assert (k3.state, k3.current_step) == ("running", "1-wait_for")


async def test_parallel_runs_of_one_key_all_hear_it(harness: Harness) -> None:
    harness.publish(PAYMENT.replace("re_entry: ignore", "re_entry: parallel"))
    runs = []
    for event_id, order in (("e-1", "o1"), ("e-2", "o1"), ("e-3", "o1/x")):
        routed = await harness.fire("order.awaiting_payment", "c-1", {"order_id": order},
                                    event_id=event_id)
        runs += routed.started
    assert runs == ["journey/pay/c-1/o1/e-1", "journey/pay/c-1/o1/e-2",
                    "journey/pay/c-1/o1/x/e-3"]
    for run in runs:
        await harness.at(run, "1-wait_for")

    routed = await harness.fire("order.cancelled", "c-1", {"order_id": "o1"})

    # the run of order `o1/x` shares the prefix `.../o1/` but is not order o1's
    assert sorted(routed.signalled) == runs[:2]
    for run in runs[:2]:
        assert (await harness.ended(run)).state == "exited"
    assert (await harness.status(runs[2])).state == "running"


def test_a_listener_key_needs_a_trigger_key() -> None:
    text = ("journey: j\ntrigger: {event: order.placed}\n"
            "exit_on:\n  - {event: order.paid, key: \"{{ event.data.order_id }}\"}\n"
            "steps:\n  - wait_for: {event: x, timeout: 1d, key: \"{{ event.data.id }}\"}\n")
    with pytest.raises(JourneyInvalid) as caught:
        compile_journey(text, "j.yaml")

    found = [(p.line, p.column, p.message) for p in caught.value.problems]
    assert found == [
        (4, 25, "`key:` on an `exit_on` rule needs a trigger `key:`"),
        (6, 39, "`key:` on `wait_for` needs a trigger `key:`")]
    assert "add `key:` to the trigger" in (caught.value.problems[0].hint or "")


def test_a_journey_without_listener_keys_keeps_its_version() -> None:
    plain = "journey: j\ntrigger: {event: a, key: \"{{ event.data.k }}\"}\nexit_on: [b]\n" \
            "steps:\n  - wait_for: {event: c, timeout: 1d}\n"
    plan = compile_journey(plain)
    # the hash of this Plan before listener keys existed: runs and stored versions agree
    assert plan.version == "67f4e5f09cab"
    assert "key" not in plan.steps[0].params

"""The shipped `abandoned-cart` and `payment-link` journeys on the time-skipping server with a
real worker, the product's router and the sandbox providers (email, SMS, WhatsApp, voice):
every message at its local time in two zones, quiet hours moving the SMS, WhatsApp and the
call to 09:00, SMS when WhatsApp cannot be used, the call offering the operator, the
manager's task; each run ends the moment its own order is placed or paid, and a payment link
is retried until the provider takes it. Expected timelines are data shared with
`tropa simulate`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.conftest import SandboxServer
from tests.support import scenario_runner as run
from tests.support.harness import Harness
from tests.support.scenario_runner import harness, time_skipping
from tests.support.scenario_timelines import ABANDONED_CART, PAYMENT_LINK

__all__ = ["harness", "time_skipping"]  # the fixtures: a server of each test's own


async def test_abandoned_cart_chain_and_stop_on_the_carts_order(
        harness: Harness, sandbox: SandboxServer) -> None:
    run.publish_example(harness, ABANDONED_CART.journey)
    run.add_customers(harness, ABANDONED_CART)
    await run.advance_to(harness, run.utc(ABANDONED_CART.start))
    await run.play(harness, run.event_actions(harness, ABANDONED_CART),
                   run.utc(ABANDONED_CART.until))

    assert await run.observed(harness, ABANDONED_CART) == ABANDONED_CART.expected
    [call] = sandbox.sent("voice")
    assert (call["to"], call["connect_to"]) == ("+79160000301", "+74950000000")
    [whatsapp] = sandbox.sent("whatsapp")
    assert whatsapp["template"]["name"] == "cart_reminder"  # type: ignore[index]
    # The manager heard of the task by email; the customer's emails went to the customer.
    assert sorted(str(m["to"]) for m in sandbox.sent("email")) == [
        "kate@example.com", "kate@example.com", "manager@shop.example",
        "vlad@example.com", "vlad@example.com"]


async def test_payment_link_ended_by_its_own_order_only(
        harness: Harness, sandbox: SandboxServer) -> None:
    run.publish_example(harness, PAYMENT_LINK.journey)
    run.add_customers(harness, PAYMENT_LINK)
    await run.advance_to(harness, run.utc(PAYMENT_LINK.start))
    await run.play(harness, run.event_actions(harness, PAYMENT_LINK),
                   run.utc(PAYMENT_LINK.until))

    assert await run.observed(harness, PAYMENT_LINK) == PAYMENT_LINK.expected
    assert len(sandbox.sent("sms")) == 5  # each SMS taken once


async def test_payment_link_is_retried_until_the_provider_takes_it(
        harness: Harness, sandbox: SandboxServer) -> None:
    """The SMS provider is down for the first 20 minutes: the link goes out once, when it is
    back, and the reminder comes a day after the link went out."""
    run.publish_example(harness, PAYMENT_LINK.journey)
    scenario = replace(PAYMENT_LINK, customers={"sam": PAYMENT_LINK.customers["sam"]},
                       events=[e for e in PAYMENT_LINK.events if e["customer_id"] == "sam"],
                       expected={})
    run.add_customers(harness, scenario)
    ordered = run.utc(scenario.events[0]["occurred_at"])
    await run.advance_to(harness, ordered)
    with sandbox.box.lock:
        sandbox.box.faults.down = True
    await run.deliver(harness, scenario.events[0])
    await run.advance_to(harness, ordered + timedelta(minutes=20))
    tries = len(sandbox.box.calls)
    with sandbox.box.lock:
        sandbox.box.faults.down = False
    await run.advance_to(harness, run.utc(scenario.until))

    assert tries > 2, "the link was tried again while the provider was down"
    link, reminder, end = PAYMENT_LINK.expected["sam"]
    assert (await run.observed(harness, scenario))["sam"] == [
        link, replace(reminder, at="2030-03-03 08:20"), replace(end, at="2030-03-05 08:20")]
    assert [m["text"] for m in sandbox.sent("sms")] == [link.text, reminder.text]

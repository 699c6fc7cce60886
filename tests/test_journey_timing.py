"""Journey timing on the time-skipping server with a real Worker and the real sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.harness import Harness, running
from tests.support.journeys import add_customer
from tests.support.waiting import eventually
from tropa.dsl.plan import EventIn
from tropa.settings import Settings
from tropa.store.models import Customer, Message

CART = """
journey: cart
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
exit_on: [order.placed]
steps:
  - wait: 1h
  - send: {channel: email, subject: "Your cart",
           text: "{{ customer.first_name }}, {{ event.data.cart_url }}"}
  - wait: 3h
  - branch:
      if: customer.phone_verified
      then:
        - send: {channel: sms, text: "Cart {{ event.data.cart_id }} is waiting"}
  - wait: 1d
  - send: {channel: sms, text: "Last call"}
  - update_customer: {add_tags: [cart-abandoner]}
"""


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    async with running(time_skipping, engine, settings, task_queue) as h:
        yield h


async def test_cart_chain_sends_each_message_once_in_order(harness: Harness,
                                                          sandbox: SandboxServer) -> None:
    harness.publish(CART)
    add_customer(harness.engine, "c-1", phone_verified=True)
    routed = await harness.fire("cart.updated", "c-1", {"cart_id": "k9", "cart_url": "https://s/k9"})
    assert routed.started == ["journey/cart/c-1/k9"]

    status = await harness.finish("journey/cart/c-1/k9")

    assert status.state == "completed"
    assert [(m["channel"], m["text"]) for m in sandbox.sent()] == [
        ("email", "Anna, https://s/k9"), ("sms", "Cart k9 is waiting"), ("sms", "Last call")]
    assert [m["to"] for m in sandbox.sent("sms")] == ["+79161234567"] * 2
    assert [(r.step_id, r.outcome) for r in status.steps] == [
        ("1-wait", "waited"), ("2-send", "accepted"), ("3-wait", "waited"),
        ("4-branch", "then"), ("4-branch/then/1-send", "accepted"), ("5-wait", "waited"),
        ("6-send", "accepted"), ("7-update_customer", "updated")]
    first, last = status.steps[0], status.steps[-1]
    waited = last.started_at - first.started_at
    assert timedelta(hours=28) <= waited < timedelta(hours=28, minutes=1)
    with Session(harness.engine) as session:
        assert session.get(Customer, "c-1").tags == ["cart-abandoner"]  # type: ignore[union-attr]


async def test_exit_event_stops_the_run_mid_wait(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(CART)
    add_customer(harness.engine, "c-2", phone_verified=False)
    await harness.fire("cart.updated", "c-2", {"cart_id": "k1", "cart_url": "u"})
    await time_skipping.sleep(timedelta(hours=2))

    # keyed journey: the order names its cart, and only that cart's run ends
    routed = await harness.fire("order.placed", "c-2", {"order_id": "o-1", "cart_id": "k1"})

    assert routed.signalled == ["journey/cart/c-2/k1"]
    status = await harness.finish("journey/cart/c-2/k1")
    assert status.state == "exited"
    assert status.steps[-1].outcome == "exited"
    assert status.steps[-1].detail == "exit_on order.placed"
    assert [m["channel"] for m in sandbox.sent()] == ["email"]


WAIT_FOR = """
journey: review
trigger: {event: order.delivered}
settings: {category: service}
steps:
  - wait_for:
      event: review.left
      where: event.data.stars >= 4
      timeout: 3d
      on_timeout:
        - send: {channel: sms, text: "How was your order?"}
  - send:
      channel: sms
      text: "{{ 'Thanks for the review' if steps.wait_for.received else 'No review' }}"
"""


async def test_wait_for_times_out_and_runs_on_timeout(harness: Harness,
                                                      sandbox: SandboxServer) -> None:
    harness.publish(WAIT_FOR)
    add_customer(harness.engine, "c-3")
    await harness.fire("order.delivered", "c-3")

    status = await harness.finish("journey/review/c-3")

    assert [m["text"] for m in sandbox.sent()] == ["How was your order?", "No review"]
    assert status.steps[0].outcome == "timed_out"
    assert status.steps[1].finished_at - status.steps[0].started_at >= timedelta(days=3)


async def test_wait_for_matching_event_skips_timeout(
        harness: Harness, time_skipping: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    harness.publish(WAIT_FOR)
    add_customer(harness.engine, "c-4")
    await harness.fire("order.delivered", "c-4")
    await time_skipping.sleep(timedelta(hours=5))
    await harness.fire("review.left", "c-4", {"stars": 2})  # does not match `where`
    await harness.fire("review.left", "c-4", {"stars": 5})

    status = await harness.finish("journey/review/c-4")

    assert status.steps[0].outcome == "received"
    assert [m["text"] for m in sandbox.sent()] == ["Thanks for the review"]


SPLIT = """
journey: ab
trigger: {event: go}
settings: {category: service}
steps:
  - split:
      arms:
        - {name: a, weight: 1, steps: [{send: {channel: sms, text: "A"}}]}
        - {name: b, weight: 1, steps: [{send: {channel: sms, text: "B"}}]}
      holdout: 1
  - send: {channel: sms, text: "after"}
"""


async def test_split_is_stable_per_customer_and_records_the_holdout(harness: Harness) -> None:
    harness.publish(SPLIT)
    outcomes: dict[str, str] = {}
    for n in range(12):
        add_customer(harness.engine, f"s-{n}")
        await harness.fire("go", f"s-{n}")
        status = await harness.finish(f"journey/ab/s-{n}")
        outcomes[f"s-{n}"] = status.steps[0].outcome
        if status.steps[0].outcome == "holdout":
            assert status.state == "exited"
            assert len(status.steps) == 1
    assert set(outcomes.values()) == {"arm:a", "arm:b", "holdout"}
    # a second run of the same customer lands in the same arm
    await harness.fire("go", "s-0")
    assert (await harness.finish("journey/ab/s-0")).steps[0].outcome == outcomes["s-0"]
    with Session(harness.engine) as session:
        sent = session.exec(select(Message).where(Message.customer_id == "s-0")).all()
    expected = 0 if outcomes["s-0"] == "holdout" else 4
    assert len(sent) == expected


WAIT_UNTIL = """
journey: morning
trigger: {event: go}
settings: {category: service}
steps:
  - wait_until: "10:00"
  - send: {channel: sms, text: "Good morning"}
"""


async def test_wait_until_uses_the_customer_time_zone(harness: Harness,
                                                      sandbox: SandboxServer) -> None:
    harness.publish(WAIT_UNTIL)
    add_customer(harness.engine, "c-5", time_zone="Asia/Yekaterinburg")
    await harness.fire("go", "c-5")

    status = await harness.finish("journey/morning/c-5")

    waited = status.steps[0].finished_at
    assert waited is not None
    local = waited.astimezone(ZoneInfo("Asia/Yekaterinburg"))
    assert (local.hour, local.minute) == (10, 0)
    assert waited - status.steps[0].started_at <= timedelta(days=1)
    assert len(sandbox.sent()) == 1


async def test_marketing_without_consent_is_suppressed(harness: Harness,
                                                       sandbox: SandboxServer) -> None:
    harness.publish("journey: promo\ntrigger: {event: go}\nsteps:\n"
                    "  - send: {channel: sms, text: Sale}\n")
    add_customer(harness.engine, "c-6", consents={"marketing": {"email": True}})
    await harness.fire("go", "c-6")

    status = await harness.finish("journey/promo/c-6")

    assert status.steps[0].outcome == "suppressed"
    assert status.steps[0].detail == "no_consent"
    assert sandbox.sent() == []
    assert sandbox.box.calls == []


async def test_invalid_number_is_cancelled_with_reason_and_never_sent(
        harness: Harness, sandbox: SandboxServer) -> None:
    harness.publish("journey: svc\ntrigger: {event: go}\nsettings: {category: service}\n"
                    "steps:\n  - send: {channel: sms, text: Code 1234}\n  - wait: 1h\n")
    add_customer(harness.engine, "c-7", phone="12")
    await harness.fire("go", "c-7")

    status = await harness.finish("journey/svc/c-7")

    assert status.state == "completed"
    assert status.steps[0].outcome == "cancelled"
    assert "invalid_recipient" in status.steps[0].detail
    assert sandbox.box.calls == []
    with Session(harness.engine) as session:
        message = session.exec(select(Message).where(Message.customer_id == "c-7")).one()
    assert (message.status, message.reason) == ("cancelled", "invalid_recipient")


async def test_re_entry_rules(harness: Harness, time_skipping: WorkflowEnvironment) -> None:
    for rule in ("ignore", "once", "restart"):
        harness.publish(f"journey: re-{rule}\ntrigger: {{event: go-{rule}}}\nre_entry: {rule}\n"
                        "settings: {category: service}\nsteps:\n  - wait: 2d\n")
    add_customer(harness.engine, "c-8")
    for rule in ("ignore", "once", "restart"):
        assert (await harness.fire(f"go-{rule}", "c-8")).started == [f"journey/re-{rule}/c-8"]
    await time_skipping.sleep(timedelta(hours=1))
    rules = ("ignore", "once", "restart")
    again = {rule: await harness.fire(f"go-{rule}", "c-8") for rule in rules}
    assert again["ignore"].started == [] and "a run exists" in again["ignore"].skipped[0]["reason"]
    assert again["once"].started == []
    assert again["restart"].started == ["journey/re-restart/c-8"]
    await harness.finish("journey/re-ignore/c-8")
    await harness.finish("journey/re-once/c-8")
    # after the run ended: `ignore` lets the customer in again, `once` never does
    assert (await harness.fire("go-ignore", "c-8")).started == ["journey/re-ignore/c-8"]
    assert (await harness.fire("go-once", "c-8")).started == []


async def test_runs_carry_search_attributes_without_personal_data(harness: Harness) -> None:
    version = harness.publish("journey: sa\ntrigger: {event: go}\nsettings: {category: service}\n"
                              "steps:\n  - wait: 1d\n  - send: {channel: sms, text: hi}\n")
    add_customer(harness.engine, "c-42")
    await harness.fire("go", "c-42")
    status = await harness.finish("journey/sa/c-42")
    assert status.state == "completed"

    described = await harness.handle("journey/sa/c-42").describe()
    attrs = {k.name: v for k, v in described.typed_search_attributes}
    # Temporal's own record of the interpreter revisions (`workflow.patched`) the run took.
    assert attrs.pop("TemporalChangeVersion") == ["tropa-interpreter-3"]
    assert attrs == {"TropaJourney": "sa", "TropaCustomer": "c-42", "TropaVersion": version,
                     "TropaStep": "end:completed"}
    memo = await described.memo()
    assert list(memo) == ["trigger_event_id"]  # the event id only: no name, phone, email
    assert "+7916" not in str(attrs) and "@" not in str(attrs)


async def test_exit_event_during_a_send_stops_before_the_next_step(
        harness: Harness, sandbox: SandboxServer) -> None:
    from tropa.sandbox.state import Faults

    harness.publish("journey: slow-send\ntrigger: {event: go}\nexit_on: [stop]\n"
                    "settings: {category: service}\nsteps:\n"
                    "  - send: {channel: sms, text: first}\n  - wait: 1h\n"
                    "  - send: {channel: sms, text: second}\n")
    add_customer(harness.engine, "c-9")
    sandbox.box.faults = Faults(slow_seconds=1.5)
    await harness.fire("go", "c-9")
    await eventually(lambda: len(sandbox.box.calls) >= 1, message="the provider call began")

    await harness.fire("stop", "c-9")
    status = await harness.finish("journey/slow-send/c-9")

    assert status.state == "exited"
    assert [r.step_id for r in status.steps] == ["1-send"]
    # the provider call already under way completes; nothing after it is sent
    await eventually(lambda: sandbox.sent(), message="the slow provider answered")
    assert [m["text"] for m in sandbox.sent()] == ["first"]


@pytest.mark.usefixtures("sandbox")
async def test_repeating_a_restart_trigger_event_does_not_restart_its_run(
        harness: Harness) -> None:
    harness.publish(CART)
    add_customer(harness.engine, "c-10")
    data = {"cart_id": "k5", "cart_url": "u"}
    first = await harness.fire("cart.updated", "c-10", data, event_id="cart-evt-1")
    run_id = (await harness.handle(first.started[0]).describe()).run_id
    # A client whose first request failed after the start sends the same event again;
    # the router routes it again (it was never marked routed) and must not restart the run.
    await harness.router.route(first_event("cart-evt-1", "c-10", data), {})
    assert (await harness.handle(first.started[0]).describe()).run_id == run_id
    # a new event for the same cart does restart it (the run stops at a step boundary and
    # continues as new, see test_reentry.py)
    await harness.fire("cart.updated", "c-10", data, event_id="cart-evt-2")

    async def restarted() -> bool:
        return (await harness.handle(first.started[0]).describe()).run_id != run_id
    await eventually(restarted, message="run restarted")


def first_event(event_id: str, customer_id: str, data: dict[str, object]) -> EventIn:
    return EventIn(event_id=event_id, type="cart.updated", customer_id=customer_id,
                   occurred_at=datetime.now(UTC), data=data)

"""Record JourneyRun histories for the replay test.

Run after a deliberate, versioned change to the interpreter (`workflow.patched`):
    .venv/bin/python -m tests.histories.record v3
Every scenario below is run on the time-skipping server with a real worker and the sandbox
provider, and its history is saved as `<scenario>_<tag>.json`. Saved histories are never
re-recorded: each one must keep replaying with every later interpreter version.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

from tests.support.delivery import delivering
from tests.support.harness import Harness
from tests.support.journeys import add_customer
from tests.support.servers import serve
from tests.support.temporal import time_skipping_server
from tests.support.waiting import eventually
from tropa.sandbox.app import Faults, Sandbox, create_sandbox_app
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate

HERE = Path(__file__).parent

CONTROL = """
journey: replay-control
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
exit_on: [{event: order.placed, where: "event.data.total > 100"}]
steps:
  - wait: 1h
  - wait_until: "10:00"
  - wait_until: {timestamp: "2000-01-01T00:00:00+00:00"}
  - wait_for: {event: cart.viewed, where: event.data.cart_id == "k1", timeout: 1d}
  - wait_for:
      event: cart.viewed
      timeout: 1h
      on_timeout: [{update_customer: {add_tags: [timed-out]}}]
  - branch:
      if: customer.phone_verified
      then: [{update_customer: {add_tags: [verified]}}]
      else: [{wait: 1h}]
  - branch: {if: "steps.branch.taken == 'else'", then: [{wait: 1h}], else: [{wait: 2h}]}
  - split:
      arms:
        - {name: a, weight: 1, steps: [{wait: 1h}]}
        - {name: b, weight: 1, steps: [{wait: 2h}]}
  - exit: done here
  - wait: 1h
"""
EXIT_ON = """
journey: replay-exit-on
trigger: {event: cart.updated}
exit_on: [{event: order.placed, where: "event.data.total > 100"}]
steps:
  - wait: 30d
"""
HOLDOUT = """
journey: replay-holdout
trigger: {event: cart.updated}
steps:
  - split: {arms: [{name: a, weight: 1, steps: [{wait: 1h}]}], holdout: 1000000}
"""
SEND = """
journey: replay-send
settings: {category: service}
trigger: {event: order.awaiting_payment}
steps:
  - send: {channel: sms, text: "Pay here: {{ event.data.url }}"}
  - send: {channel: sms, text: "Last call", fallback: [email], deliver_within: 1h,
           subject: "Last call"}
"""
Scenario = Callable[[WorkflowEnvironment, Harness, Sandbox], Awaitable[str]]


async def _ended(h: Harness, workflow_id: str) -> None:
    async def ended() -> bool:
        return (await h.status(workflow_id)).state != "running"
    await eventually(ended, timeout=60, message=f"{workflow_id} ended")


async def control_steps(env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """wait, wait_until (both forms), wait_for (received, timed out), branch, split, exit."""
    h.publish(CONTROL)
    await h.fire("cart.updated", "c-replay", {"cart_id": "k1"})
    await h.fire("order.placed", "c-replay", {"total": 5})
    await env.sleep(timedelta(days=1, hours=1))
    await h.fire("cart.viewed", "c-replay", {"cart_id": "k1"})
    await h.finish("journey/replay-control/c-replay/k1")
    return "journey/replay-control/c-replay/k1"


async def exit_on(_env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """An `exit_on` event whose condition fails once, then holds."""
    h.publish(EXIT_ON)
    await h.fire("cart.updated", "c-replay")
    await h.fire("order.placed", "c-replay", {"total": 5})
    await h.fire("order.placed", "c-replay", {"total": 500})
    await h.finish("journey/replay-exit-on/c-replay")
    return "journey/replay-exit-on/c-replay"


async def holdout(_env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """A split that puts the customer in the holdout."""
    h.publish(HOLDOUT)
    await h.fire("cart.updated", "c-replay")
    await h.finish("journey/replay-holdout/c-replay")
    return "journey/replay-holdout/c-replay"


async def send_receipts(_env: WorkflowEnvironment, h: Harness, box: Sandbox) -> str:
    """Prepare, deliver, an undelivered receipt and a new round, a delivered receipt; then a
    rejected receipt and the fallback to email."""
    h.publish(SEND)
    box.faults = Faults(undelivered_receipts=1)
    await h.fire("order.awaiting_payment", "c-replay", {"url": "https://pay/1"})

    async def first_done() -> bool:
        return len((await h.status("journey/replay-send/c-replay")).steps) > 1
    await eventually(first_done, timeout=60, message="first send done")
    box.faults = Faults(receipt="rejected")
    await _ended(h, "journey/replay-send/c-replay")
    return "journey/replay-send/c-replay"


async def quiet_hours(env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """A send in the customer's quiet hours waits for the window, then passes the gate."""
    zone = ZoneInfo("Asia/Vladivostok")
    local = (await env.get_current_time()).astimezone(zone)
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=3)).strftime("%H:%M")
    h.publish(f"""
journey: replay-quiet
trigger: {{event: promo}}
steps:
  - send: {{channel: sms, text: "Good morning", quiet_hours: {{from: "{start}", to: "{end}"}}}}
""")
    await h.fire("promo", "c-quiet")
    await env.sleep(timedelta(hours=3, minutes=5))
    await _ended(h, "journey/replay-quiet/c-quiet")
    return "journey/replay-quiet/c-quiet"


async def restart(_env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """`re_entry: restart`: a new trigger stops the run in its wait; it continues as new."""
    h.publish("""
journey: replay-restart
trigger: {event: cart.updated}
steps:
  - wait: 1d
""")
    await h.fire("cart.updated", "c-replay", event_id="restart-1")
    first = (await h.handle("journey/replay-restart/c-replay").describe()).run_id
    await h.fire("cart.updated", "c-replay", event_id="restart-2")

    async def restarted() -> bool:
        return (await h.handle("journey/replay-restart/c-replay").describe()).run_id != first
    await eventually(restarted, timeout=60, message="restarted")
    await h.handle("journey/replay-restart/c-replay").terminate(reason="recorded")
    return f"journey/replay-restart/c-replay@{first}"


async def refused_condition(_env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """Conditions that cannot be evaluated (text compared with a number) do not hold."""
    h.publish("""
journey: replay-refused
trigger: {event: cart.updated}
exit_on: [{event: order.placed, where: "event.data.total > 100"}]
steps:
  - branch: {if: "event.data.total > 100", then: [{wait: 1h}]}
  - wait_for: {event: order.paid, where: "event.data.total > 100", timeout: 1d}
""")
    await h.fire("cart.updated", "c-replay", {"total": "many"})
    await h.fire("order.placed", "c-replay", {"total": "lots"})
    await h.fire("order.paid", "c-replay", {"total": "n/a"})
    await h.finish("journey/replay-refused/c-replay")
    return "journey/replay-refused/c-replay"


async def exit_during_send(_env: WorkflowEnvironment, h: Harness, box: Sandbox) -> str:
    """An `exit_on` event while a send is with the provider: the send finishes, then the run
    ends."""
    h.publish("""
journey: replay-exit-send
settings: {category: service}
trigger: {event: go}
exit_on: [stop]
steps:
  - send: {channel: sms, text: first}
  - wait: 1h
""")
    box.faults = Faults(slow_seconds=1.5)
    await h.fire("go", "c-replay")
    await eventually(lambda: box.calls, timeout=30, message="the provider call began")
    await h.fire("stop", "c-replay")
    await _ended(h, "journey/replay-exit-send/c-replay")
    return "journey/replay-exit-send/c-replay"


async def keyed_listeners(_env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """Keyed listeners: events of another cart pass the run by; a `wait_for` and an
    `exit_on` with keys of their own."""
    h.publish("""
journey: replay-keyed
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
exit_on: [{event: order.placed, key: "{{ event.data.cart.id }}"}]
steps:
  - wait_for: {event: cart.viewed, timeout: 1d}
  - wait_for: {event: cart.viewed, key: "{{ event.data.viewed }}", timeout: 1d}
  - wait: 1d
""")
    run = "journey/replay-keyed/c-replay/k1"
    for cart in ("k1", "k2"):
        await h.fire("cart.updated", "c-replay", {"cart_id": cart})
    await h.fire("cart.viewed", "c-replay", {"cart_id": "k2"})
    await h.fire("cart.viewed", "c-replay", {"cart_id": "k1"})
    await h.at(run, "2-wait_for")
    await h.fire("cart.viewed", "c-replay", {"viewed": "k1"})
    await h.at(run, "3-wait")
    await h.fire("order.placed", "c-replay", {"cart": {"id": "k2"}})
    await h.fire("order.placed", "c-replay", {"cart": {"id": "k1"}})
    await _ended(h, run)
    return run


async def journey_settings(env: WorkflowEnvironment, h: Harness, _box: Sandbox) -> str:
    """Journey-level quiet hours hold a send until they end; its cap suppresses the next."""
    zone = ZoneInfo("Asia/Vladivostok")
    local = (await env.get_current_time()).astimezone(zone)
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=3)).strftime("%H:%M")
    h.publish(f"""
journey: replay-settings
trigger: {{event: promo}}
settings:
  category: service
  quiet_hours: {{from: "{start}", to: "{end}", timezone: customer}}
  frequency_cap: {{max: 1, per: 1d}}
steps:
  - send: {{channel: sms, text: "Good morning"}}
  - send: {{channel: sms, text: "Capped"}}
""")
    await h.fire("promo", "c-quiet")
    await env.sleep(timedelta(hours=3, minutes=5))
    await _ended(h, "journey/replay-settings/c-quiet")
    return "journey/replay-settings/c-quiet"


SCENARIOS: dict[str, Scenario] = {
    "keyed_listeners": keyed_listeners, "journey_settings": journey_settings,
    "exit_during_send": exit_during_send,
    "refused_condition": refused_condition,
    "control_steps": control_steps, "exit_on": exit_on, "holdout": holdout,
    "send_receipts": send_receipts, "quiet_hours": quiet_hours, "restart": restart,
}


async def record(tag: str, names: list[str]) -> None:
    box = Sandbox()
    with tempfile.TemporaryDirectory() as tmp, serve(create_sandbox_app(box)) as sandbox_url:
        url = f"sqlite:///{tmp}/tropa.db"
        migrate(url)
        engine = make_engine(url)
        settings = Settings(data_dir=Path(tmp))
        settings.providers.sms_url = settings.providers.email_url = sandbox_url
        settings.delivery.redeliver_after_seconds = 0.5
        async with time_skipping_server() as env, \
                delivering(env, engine, settings, f"tq-{uuid.uuid4()}", receipts=True) as h:
            add_customer(engine, "c-replay")
            add_customer(engine, "c-quiet", time_zone="Asia/Vladivostok")
            for name in names:
                box.faults = Faults()
                workflow_id, _, run_id = (await SCENARIOS[name](env, h, box)).partition("@")
                handle = h.client.get_workflow_handle(workflow_id, run_id=run_id or None)
                history = await handle.fetch_history()
                print(f"{name}: {len(history.events)} events, ending with "
                      f"{history.events[-1].WhichOneof('attributes')}")
                (HERE / f"{name}_{tag}.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1], sys.argv[2:] or list(SCENARIOS)))

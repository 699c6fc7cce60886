"""Record a JourneyRun history for the replay test.

Run after a deliberate, versioned change to the interpreter (`workflow.patched`):
    .venv/bin/python -m tests.histories.record
The saved history must keep replaying with every later interpreter version.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from tests.support.harness import running
from tests.support.journeys import add_customer
from tests.support.servers import serve
from tests.support.temporal import time_skipping_server
from tropa.sandbox.app import create_sandbox_app
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate

HERE = Path(__file__).parent
JOURNEY = """
journey: replay-sample
trigger: {event: cart.updated, key: "{{ event.data.cart_id }}"}
exit_on: [order.placed]
settings: {category: marketing}
steps:
  - wait: 1h
  - send: {channel: sms, text: "{{ customer.first_name }}, cart {{ event.data.cart_id }}"}
  - wait_for:
      event: cart.viewed
      where: event.data.cart_id == "k1"
      timeout: 1d
      on_timeout:
        - send: {channel: email, subject: Cart, text: "Still there"}
  - branch:
      if: customer.phone_verified
      then: [{update_customer: {add_tags: [replayed]}}]
      else: [{wait: 1h}]
  - split:
      arms:
        - {name: a, weight: 1, steps: [{wait_until: "10:00"}]}
        - {name: b, weight: 1, steps: [{wait: 2h}]}
  - send: {channel: sms, text: "Last call"}
"""


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, serve(create_sandbox_app()) as sandbox_url:
        url = f"sqlite:///{tmp}/tropa.db"
        migrate(url)
        engine = make_engine(url)
        settings = Settings(data_dir=Path(tmp))
        settings.providers.sms_url = settings.providers.email_url = sandbox_url
        async with time_skipping_server() as env, \
                running(env, engine, settings, f"tq-{uuid.uuid4()}") as h:
            h.publish(JOURNEY)
            add_customer(engine, "c-replay")
            await h.fire("cart.updated", "c-replay", {"cart_id": "k1"})
            await env.sleep(timedelta(hours=2))
            await h.fire("cart.viewed", "c-replay", {"cart_id": "k1"})
            status = await h.finish("journey/replay-sample/c-replay/k1")
            print("recorded run:", status.state, [s.outcome for s in status.steps])
            history = await h.handle("journey/replay-sample/c-replay/k1").fetch_history()
            (HERE / "journey_run_v1.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(main())

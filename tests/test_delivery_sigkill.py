"""Exactly once under SIGKILL: a worker process killed mid-send and started again (dev server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.journeys import add_customer, publish_yaml
from tests.support.waiting import eventually
from tests.support.worker_process import Workers
from tests.support.worker_process import worker_env as worker_env_for
from tropa.dsl.plan import RunStatus
from tropa.sandbox.app import Faults
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue

pytestmark = pytest.mark.devserver
CUSTOMERS = 16
JOURNEY = """
journey: order-notice
settings: {category: service}
trigger: {event: order.shipped}
steps:
  - send: {channel: sms, text: "Order {{ event.data.order }} shipped"}
  - send: {channel: email, subject: "Shipped", text: "Order {{ event.data.order }} shipped"}
"""


@pytest.fixture
def worker_env(dev_server: WorkflowEnvironment, engine: sa.Engine, sandbox: SandboxServer,
               task_queue: str) -> dict[str, str]:
    return worker_env_for(dev_server, engine, sandbox, task_queue)


@pytest.fixture
def workers(worker_env: dict[str, str], engine: sa.Engine, sandbox: SandboxServer,
            tmp_path: Path) -> Iterator[Workers]:
    started = Workers(worker_env, tmp_path / "worker.log", engine, sandbox)
    yield started
    started.stop()


async def test_worker_killed_mid_send_each_customer_gets_each_message_once(
        dev_server: WorkflowEnvironment, engine: sa.Engine, sandbox: SandboxServer,
        task_queue: str, workers: Workers, tmp_path: Path) -> None:
    publish_yaml(engine, JOURNEY)
    phones = {f"c-{i}": f"+7916123{i:04d}" for i in range(CUSTOMERS)}
    for customer, phone in phones.items():
        add_customer(engine, customer, phone=phone, email=f"{customer}@example.com")
    router = EventRouter(engine, dev_server.client, JourneyCatalogue(engine, max_age_seconds=0),
                         task_queue)
    # A slow provider keeps sends in flight when the kill comes.
    sandbox.box.faults = Faults(slow_seconds=0.3)
    from datetime import UTC, datetime

    from tropa.dsl.plan import EventIn

    for i, customer in enumerate(phones):
        await router.ingest(EventIn(event_id=f"ship-{i}", type="order.shipped",
                                    customer_id=customer, occurred_at=datetime.now(UTC),
                                    data={"order": f"o-{i}"}))
    workers.start()
    await eventually(lambda: len(sandbox.box.calls) >= 6, timeout=60, message="sends started")

    await workers.kill()
    workers.start()

    log = tmp_path / "worker.log"
    for customer in phones:
        handle = dev_server.client.get_workflow_handle(f"journey/order-notice/{customer}",
                                                       result_type=RunStatus)
        status = await eventually(lambda h=handle: _done(h), timeout=120,
                                  message=f"run of {customer} done")
        assert [s.outcome for s in status.steps] == ["accepted", "accepted"], log.read_text()
    per_recipient = Counter((m["channel"], m["to"]) for m in sandbox.sent())
    assert per_recipient == Counter({**{("sms", p): 1 for p in phones.values()},
                                     **{("email", f"{c}@example.com"): 1 for c in phones}})
    # Exactly the calls the provider got but Tropa had not committed when the worker died
    # are repeated, each once, and the provider deduplicated them.
    seen, explained = workers.calls_per_key()
    assert seen == explained
    repeated = sum(n - 1 for n in seen.values())
    assert repeated == workers.in_flight_at_kills[0]
    print(f"uncommitted at kill={workers.in_flight_at_kills[0]} calls={len(sandbox.box.calls)} "
          f"repeated keys deduplicated={repeated}")


async def _done(handle: object) -> RunStatus | None:
    from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

    assert isinstance(handle, WorkflowHandle)
    info = await handle.describe()
    if info.status != WorkflowExecutionStatus.COMPLETED:
        return None
    return await handle.result()  # type: ignore[no-any-return]

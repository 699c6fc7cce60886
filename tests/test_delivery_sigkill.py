"""Exactly once under SIGKILL: a worker process killed mid-send, started again, on the dev server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.journeys import add_customer, publish_yaml
from tests.support.secrets import production_secrets
from tests.support.waiting import eventually
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
    return {**os.environ,
            "TROPA_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "TROPA_TEMPORAL_TASK_QUEUE": task_queue,
            "TROPA_DATABASE_URL": str(engine.url),
            "TROPA_PROVIDER_SMS_URL": sandbox.url, "TROPA_PROVIDER_EMAIL_URL": sandbox.url,
            "TROPA_DELIVERY_DELIVER_TIMEOUT_SECONDS": "3",
            "TROPA_DELIVERY_RETRY_INITIAL_SECONDS": "0.5",
            "TROPA_DELIVERY_RETRY_MAX_INTERVAL_SECONDS": "2",
            "TROPA_LOG_LEVEL": "WARNING", **production_secrets()}


@pytest.fixture
def spawn(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tropa.delivery"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def test_worker_killed_mid_send_each_customer_gets_each_message_once(
        dev_server: WorkflowEnvironment, engine: sa.Engine, sandbox: SandboxServer,
        task_queue: str, worker_env: dict[str, str], spawn: list[subprocess.Popen[bytes]],
        tmp_path: Path) -> None:
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
    log = tmp_path / "worker.log"
    spawn.append(_start(worker_env, log))
    await eventually(lambda: len(sandbox.box.calls) >= 6, timeout=60, message="sends started")

    spawn[0].send_signal(signal.SIGKILL)
    spawn[0].wait(timeout=10)
    in_flight_at_kill = len(sandbox.box.calls)
    spawn.append(_start(worker_env, log))

    for customer in phones:
        handle = dev_server.client.get_workflow_handle(f"journey/order-notice/{customer}",
                                                       result_type=RunStatus)
        status = await eventually(lambda h=handle: _done(h), timeout=120,
                                  message=f"run of {customer} done")
        assert [s.outcome for s in status.steps] == ["accepted", "accepted"], log.read_text()
    per_recipient = Counter((m["channel"], m["to"]) for m in sandbox.sent())
    assert per_recipient == Counter({**{("sms", p): 1 for p in phones.values()},
                                     **{("email", f"{c}@example.com"): 1 for c in phones}})
    assert in_flight_at_kill < 2 * CUSTOMERS
    repeated = sum(n - 1 for n in Counter(c["key"] for c in sandbox.box.calls).values())
    print(f"calls at kill={in_flight_at_kill} calls={len(sandbox.box.calls)} "
          f"repeated keys deduplicated={repeated}")


async def _done(handle: object) -> RunStatus | None:
    from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

    assert isinstance(handle, WorkflowHandle)
    info = await handle.describe()
    if info.status != WorkflowExecutionStatus.COMPLETED:
        return None
    return await handle.result()  # type: ignore[no-any-return]

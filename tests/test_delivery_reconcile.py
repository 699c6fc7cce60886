"""A send waiting for a receipt never waits in silence.

When a worker dies between the provider's accept and Tropa's commit, the repeated call gets
the provider's existing message id and no new receipt; the receipt the provider posted in
between was refused (Tropa did not know the id yet). Tropa keeps such early receipts and the
deliver phase takes them when it commits the id; a receipt that never comes ends the step
`sent_unconfirmed` after `receipt_timeout`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.delivery import delivering, messages
from tests.support.harness import Harness
from tests.support.journeys import add_customer, publish_yaml
from tests.support.servers import serve
from tests.support.waiting import eventually
from tests.support.worker_process import Workers, worker_env
from tropa.api.main import create_app
from tropa.channels.base import OutgoingMessage
from tropa.dsl.plan import EventIn, RunStatus
from tropa.sandbox.app import Faults
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings

CODE = """
journey: pay-link
settings: {category: service}
trigger: {event: order.awaiting_payment}
steps:
  - send: {channel: sms, text: "Pay here"}
"""
RUN = "journey/pay-link/c-1"
ENDS_WITHIN = 90


@pytest.fixture
async def harness(time_skipping: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    # Retries far apart in real time: the test acts between two attempts.
    settings.delivery.retry_initial_seconds = 600
    async with delivering(time_skipping, engine, settings, task_queue, receipts=True) as h:
        h.publish(CODE)
        add_customer(h.engine, "c-1", phone="+79161234567")
        yield h


async def test_a_receipt_posted_before_the_commit_reaches_the_run(
        harness: Harness, sandbox: SandboxServer, settings: Settings) -> None:
    # The provider posts each receipt once (many retry for hours; some do not).
    sandbox.box.faults = Faults(down=True, receipt_attempts=1)
    await harness.fire("order.awaiting_payment", "c-1")
    await eventually(lambda: sandbox.box.calls, message="first attempt")
    key = messages(harness.engine)[0].idempotency_key

    # What a worker killed mid-call leaves behind: the provider took the message under the
    # call's key and posted its receipt while Tropa had not committed the id.
    ref = OutgoingMessage(idempotency_key=key, channel="sms", category="service",
                          recipient="+79161234567", text="Pay here").provider_ref()
    sandbox.box.faults = Faults(receipt="none", receipt_attempts=1)
    taken = sandbox.box.accept("sms", ref, {"shape": "vonage", "from": "Tropa",
                                            "to": "+79161234567", "text": "Pay here"})
    assert taken.record is not None
    receipts = f"{settings.delivery.receipts_base_url}/v1/providers/vonage/receipts"
    posted_before = len(sandbox.box.receipts_posted)
    async with httpx.AsyncClient() as client:
        posted = await client.post(f"{sandbox.url}/sandbox/receipts", json={
            "message_id": taken.record["message_id"], "status": "delivered", "url": receipts})
    assert posted.status_code == 202
    await eventually(lambda: len(sandbox.box.receipts_posted) > posted_before,
                     message="receipt posted once")

    # The repeated call gets the existing id and no new receipt.
    status = await asyncio.wait_for(harness.finish(RUN), ENDS_WITHIN)

    assert (status.steps[0].outcome, status.steps[0].detail) == ("delivered", "delivered via sms")
    assert len(sandbox.sent("sms")) == 1
    assert messages(harness.engine)[0].status == "delivered"


async def test_no_receipt_at_all_ends_the_step_sent_unconfirmed(
        harness: Harness, sandbox: SandboxServer) -> None:
    sandbox.box.faults = Faults(receipt="none")
    await harness.fire("order.awaiting_payment", "c-1")

    status = await asyncio.wait_for(harness.finish(RUN), ENDS_WITHIN)

    assert (status.steps[0].outcome, status.steps[0].detail) == (
        "sent_unconfirmed", "sent_unconfirmed via sms (no receipt within receipt_timeout)")
    assert len(sandbox.sent("sms")) == 1


RUNS = 20
SIX_SENDS = """
journey: order-updates
settings: {category: service}
trigger: {event: order.placed}
steps:
  - send: {channel: sms, text: "Order {{ event.data.order }}: placed"}
  - send: {channel: email, subject: "Placed", text: "Order {{ event.data.order }} placed"}
  - send: {channel: sms, text: "Order {{ event.data.order }}: packed"}
  - send: {channel: email, subject: "Packed", text: "Order {{ event.data.order }} packed"}
  - send: {channel: sms, text: "Order {{ event.data.order }}: shipped"}
  - send: {channel: email, subject: "Shipped", text: "Order {{ event.data.order }} shipped"}
"""


@pytest.mark.devserver
async def test_worker_killed_three_times_every_run_finishes_with_its_receipts(
        dev_server: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str, tmp_path: Path) -> None:
    settings.delivery.receipts_secret = SecretStr("fault-test-receipts")
    settings.temporal.task_queue = task_queue
    with serve(create_app(settings, engine, dev_server.client)) as api:
        env = worker_env(dev_server, engine, sandbox, task_queue,
                         TROPA_DELIVERY_RECEIPTS_BASE_URL=api,
                         TROPA_DELIVERY_RECEIPTS_SECRET="fault-test-receipts",
                         # The backstop: a receipt lost for good ends the step
                         # sent_unconfirmed instead of holding the run for two days.
                         TROPA_DELIVERY_RECEIPT_TIMEOUT_SECONDS="60")
        workers = Workers(env, tmp_path / "worker.log", engine, sandbox)
        try:
            await _orders_through_three_kills(dev_server, engine, sandbox, workers, task_queue)
            statuses = [await eventually(lambda c=c: _closed(dev_server, c), timeout=180,
                                         message=f"run of {c} done") for c in _customers()]
        finally:
            workers.stop()

    # Every SMS got its receipt, even those the provider posted while the worker was dead.
    for status in statuses:
        assert [s.outcome for s in status.steps] == ["delivered", "accepted"] * 3, (
            (tmp_path / "worker.log").read_text()[-3000:])
    assert Counter(m["channel"] for m in sandbox.sent()) == {"sms": 3 * RUNS,
                                                            "email": 3 * RUNS}
    seen, explained = workers.calls_per_key()
    assert seen == explained
    print(f"uncommitted at kills={workers.in_flight_at_kills} calls={sum(seen.values())} "
          f"repeated={sum(n - 1 for n in seen.values())}")


def _customers() -> list[str]:
    return [f"c-{i}" for i in range(RUNS)]


async def _orders_through_three_kills(env: WorkflowEnvironment, engine: sa.Engine,
                                      sandbox: SandboxServer, workers: Workers,
                                      task_queue: str) -> None:
    publish_yaml(engine, SIX_SENDS)
    for i, customer in enumerate(_customers()):
        add_customer(engine, customer, phone=f"+7916555{i:04d}", email=f"{customer}@example.com")
    # Each receipt is posted once: one refused while Tropa had not committed the id is kept
    # by Tropa or lost. A slow provider keeps calls in flight when a kill comes.
    sandbox.box.faults = Faults(slow_seconds=0.05, receipt_attempts=1)
    router = EventRouter(engine, env.client, JourneyCatalogue(engine, max_age_seconds=0),
                         task_queue)
    for i, customer in enumerate(_customers()):
        await router.ingest(EventIn(event_id=f"order-{i}", type="order.placed",
                                    customer_id=customer, occurred_at=datetime.now(UTC),
                                    data={"order": f"o-{i}"}))
    workers.start()
    for calls in (15, 45, 75):
        await eventually(lambda n=calls: len(sandbox.box.calls) >= n, timeout=120,
                         message=f"{calls} provider calls")
        await workers.kill()
        workers.start()


async def _closed(env: WorkflowEnvironment, customer: str) -> RunStatus | None:
    handle = env.client.get_workflow_handle(f"journey/order-updates/{customer}",
                                            result_type=RunStatus)
    if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
        return None
    return await handle.result()

"""Exactly once under SIGKILL: a worker process killed while accruing, started again."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.journeys import add_customer, publish_yaml
from tests.support.waiting import eventually
from tests.test_delivery_sigkill import _done, _start, spawn, worker_env  # noqa: F401
from tropa.dsl.plan import EventIn, RunStatus
from tropa.loyalty import ledger
from tropa.loyalty.programme import Programme
from tropa.sandbox.app import Faults
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.store.db import session_scope
from tropa.store.loyalty_models import LoyaltyOperation

pytestmark = pytest.mark.devserver
CUSTOMERS = 10
JOURNEY = """
journey: win-back
settings: {category: service}
trigger: {event: customer.lapsed}
steps:
  - accrue_bonus: {amount: 700, expires_in: 30d, reason: win-back}
  - send: {channel: sms, text: "{{ steps.accrue_bonus.amount }} bonuses are waiting for you"}
"""


def _accruals(engine: sa.Engine) -> int:
    with session_scope(engine) as session:
        return len(session.exec(sa.select(LoyaltyOperation.id)).all())  # type: ignore[call-overload]


async def test_worker_killed_mid_accrual_accrues_once(
        dev_server: WorkflowEnvironment, engine: sa.Engine, sandbox: SandboxServer,
        task_queue: str, worker_env: dict[str, str],  # noqa: F811
        spawn: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:  # noqa: F811
    publish_yaml(engine, JOURNEY)
    phones = {f"c-{i}": f"+7916555{i:04d}" for i in range(CUSTOMERS)}
    for customer, phone in phones.items():
        add_customer(engine, customer, phone=phone, email=f"{customer}@example.com")
    router = EventRouter(engine, dev_server.client, JourneyCatalogue(engine, max_age_seconds=0),
                         task_queue)
    sandbox.box.faults = Faults(slow_seconds=0.3)
    for i, customer in enumerate(phones):
        await router.ingest(EventIn(event_id=f"lapsed-{i}", type="customer.lapsed",
                                    customer_id=customer, occurred_at=datetime.now(UTC)))
    log = tmp_path / "worker.log"
    spawn.append(_start(worker_env, log))
    await eventually(lambda: _accruals(engine) >= 3, timeout=60, message="accruals started")

    spawn[0].send_signal(signal.SIGKILL)
    spawn[0].wait(timeout=10)
    at_kill = _accruals(engine)
    spawn.append(_start(worker_env, log))

    for customer in phones:
        handle = dev_server.client.get_workflow_handle(f"journey/win-back/{customer}",
                                                       result_type=RunStatus)
        status = await eventually(lambda h=handle: _done(h), timeout=120,
                                  message=f"run of {customer} done")
        assert [s.outcome for s in status.steps] == ["accrued", "accepted"], log.read_text()
    with session_scope(engine) as session:
        per_customer = Counter(session.exec(sa.select(  # type: ignore[call-overload]
            LoyaltyOperation.customer_id)).scalars().all())
        balances = {c: ledger.balance(session, Programme(), c).bonus.balance for c in phones}
    assert per_customer == Counter(dict.fromkeys(phones, 1))
    assert set(balances.values()) == {700}
    assert Counter(m["to"] for m in sandbox.sent("sms")) == Counter(dict.fromkeys(
        phones.values(), 1))
    print(f"accruals at kill={at_kill} of {CUSTOMERS}")

"""A broadcast to 10,000 customers whose worker process is SIGKILLed mid-send and started
again (dev server, PostgreSQL, the sandbox over HTTP): every recipient outside the holdout
gets exactly one message, the holdout none, and the progress adds up at the end."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.broadcasts import progress_of, start, status_of
from tests.support.waiting import eventually
from tests.support.worker_process import Workers, worker_env
from tropa.broadcasts.waves import in_holdout
from tropa.clock import utcnow
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate
from tropa.store.models import Customer

pytestmark = pytest.mark.devserver
RECIPIENTS = 10_000
CUSTOMERS: Any = Customer.__table__  # type: ignore[attr-defined]


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """The session's PostgreSQL database (its rows are told apart by a tag per test)."""
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def workers(dev_server: WorkflowEnvironment, pg_engine: sa.Engine, sandbox: SandboxServer,
            task_queue: str, tmp_path: Path) -> Iterator[Workers]:
    # Channel rate limits off (the point is the kill, not the pace); a dead worker's
    # deliver activity is given up after 5 s of silence, its page after 20 s.
    env = worker_env(dev_server, pg_engine, sandbox, task_queue, TROPA_DELIVERY_RATES="{}",
                     TROPA_BROADCASTS_DELIVER_HEARTBEAT_SECONDS="5")
    started = Workers(env, tmp_path / "worker.log", pg_engine, sandbox)
    yield started
    started.stop()


def _seed(engine: sa.Engine, tag: str) -> list[str]:
    now = utcnow()
    ids = [f"{tag}-{n:05d}" for n in range(RECIPIENTS)]
    with engine.begin() as conn:
        conn.execute(sa.insert(CUSTOMERS), [
            {"id": cid, "first_name": "Anna", "email": f"{cid}@example.com",
             "email_verified": True, "phone_verified": False, "time_zone": "Europe/Moscow",
             "locale": "ru", "consents": {"marketing": {"email": True}}, "tags": [tag],
             "attributes": {}, "created_at": now, "updated_at": now} for cid in ids])
    return ids


async def test_worker_killed_mid_broadcast_each_recipient_gets_one_message(
        dev_server: WorkflowEnvironment, pg_engine: sa.Engine, settings: Settings,
        sandbox: SandboxServer, task_queue: str, workers: Workers, tmp_path: Path) -> None:
    tag = f"k{uuid.uuid4().hex[:8]}"
    ids = _seed(pg_engine, tag)
    settings.broadcasts.page_timeout_seconds = 20
    box = sandbox.box
    workers.start()
    broadcast = await start(dev_server, pg_engine, settings, task_queue, audience={"tag": tag},
                            holdout=5)
    # Killed halfway through a page's deliveries (pages are 500), calls in flight.
    await eventually(lambda: len(box.messages) >= RECIPIENTS // 4 + 250, timeout=120,
                     message="a quarter sent")
    await workers.kill()
    sent_at_kill = len(box.messages)
    workers.start()
    await eventually(lambda: status_of(pg_engine, broadcast.id) == "completed", timeout=180,
                     message="broadcast completed after the restart")

    log = (tmp_path / "worker.log").read_text()
    held = {c for c in ids if in_holdout(broadcast.id, c, 5)}
    sent = len(ids) - len(held)
    assert 0 < len(held) < RECIPIENTS // 10
    assert sent_at_kill < sent, "the broadcast ended before the kill"
    with box.lock:
        per_key = Counter(str(m["idempotency_key"]) for m in box.messages)
        per_recipient = Counter(str(m["to"]) for m in box.messages)
        calls = len(box.calls)
    # each recipient outside the holdout exactly once; the holdout nothing
    assert per_recipient == Counter(f"{c}@example.com" for c in ids if c not in held), \
        log[-2000:]
    assert set(per_key.values()) == {1} and len(per_key) == sent
    p = progress_of(pg_engine, broadcast.id)
    assert (p.recipients, p.holdout, p.sent, p.queued, p.pending, p.failed, p.cancelled,
            p.suppressed) == (RECIPIENTS, len(held), sent, 0, 0, 0, 0, {})
    handle = dev_server.client.get_workflow_handle(broadcast.workflow_id)
    memo = await (await handle.describe()).memo_value("progress")
    assert (memo["state"], memo["recipients"], memo["sent"], memo["queued"],
            memo["failed"]) == ("completed", RECIPIENTS, sent, 0, 0)
    print(f"sent at kill={sent_at_kill} uncommitted at kill={workers.in_flight_at_kills[0]} "
          f"calls={calls} repeated calls deduplicated by key={calls - sent}")

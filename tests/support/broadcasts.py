"""Broadcast test helpers: customers in bulk, a broadcast started the way the API does."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tropa.broadcasts.progress import Progress, progress
from tropa.channels.base import ChannelAdapter
from tropa.channels.catalog import build_adapters
from tropa.delivery.workers import channel_workers
from tropa.services import broadcasts as service
from tropa.settings import Settings
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import session_scope
from tropa.store.models import Customer
from tropa.worker.worker import build_worker

EMAIL = {"channel": "email", "subject": "Sale", "text": "Hi {{ customer.first_name }}, -20%"}


def add_customers(engine: sa.Engine, ids: list[str], *, tags: list[str] | None = None,
                  **fields: Any) -> None:
    """Customers with an email each (its address derived from the id) and email consent."""
    with session_scope(engine) as session:
        for cid in ids:
            values: dict[str, Any] = {"first_name": "Anna", "email": f"{cid}@example.com",
                                      "email_verified": True, "time_zone": "Europe/Moscow",
                                      "consents": {"marketing": {"email": True}},
                                      "tags": tags if tags is not None else ["bc"]}
            session.add(Customer(id=cid, **{**values, **fields}))


async def start(env: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                task_queue: str, *, audience: dict[str, Any] | None = None,
                send: dict[str, Any] | None = None, start: dict[str, Any] | None = None,
                holdout: float = 0.0) -> Broadcast:
    """Create and start a broadcast through the service the API uses."""
    settings.temporal.task_queue = task_queue
    body = send or EMAIL
    return await service.create(engine, env.client, settings, service.NewBroadcast(
        name="test", channel=body["channel"], audience=audience or {"tag": "bc"},
        send=body, start=start or {"now": True}, holdout_percent=holdout))


def progress_of(engine: sa.Engine, broadcast_id: str) -> Progress:
    """The progress the API shows."""
    with session_scope(engine) as session:
        return progress(session, broadcast_id)


def status_of(engine: sa.Engine, broadcast_id: str) -> str:
    """The broadcast's stored status."""
    with session_scope(engine) as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        return row.status


def received(sandbox: SandboxServer) -> Counter[str]:
    """Messages the sandbox accepted, per recipient address."""
    return Counter(str(m["to"]) for m in sandbox.sent())


@asynccontextmanager
async def workers(env: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str, adapters: dict[str, ChannelAdapter] | None = None
                  ) -> AsyncIterator[None]:
    """The worker and the channel workers, with the given adapters (default: real ones)."""
    settings.delivery.channel_queues = True
    chosen = adapters or build_adapters(settings, httpx.Client(timeout=10))
    async with AsyncExitStack() as stack:
        for worker in [build_worker(env.client, settings, engine, task_queue=task_queue,
                                    adapters=chosen),
                       *channel_workers(env.client, settings, engine, task_queue=task_queue,
                                        adapters=chosen)]:
            await stack.enter_async_context(worker)
        yield

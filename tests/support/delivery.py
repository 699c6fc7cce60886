"""A harness with the channel workers (and optionally the API for receipts) running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import Harness, running
from tests.support.servers import serve
from tropa.api.main import create_app
from tropa.settings import Settings
from tropa.store.models import Message


@asynccontextmanager
async def delivering(env: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                     task_queue: str, *, receipts: bool = False) -> AsyncIterator[Harness]:
    """The journey and channel workers, and the API when receipts are on."""
    settings.delivery.channel_queues = True
    async with AsyncExitStack() as stack:
        if receipts:
            url = stack.enter_context(serve(create_app(settings, engine, env.client)))
            settings.delivery.receipts_base_url = url
        harness = await stack.enter_async_context(running(env, engine, settings, task_queue))
        yield harness


def messages(engine: sa.Engine) -> list[Message]:
    """The message log, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(Message).order_by(Message.id)))  # type: ignore[arg-type]

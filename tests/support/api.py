"""The real API app for tests: bound to a real Temporal and database, with a fresh key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from temporalio.client import Client

from tropa.api.main import create_app
from tropa.services.api_keys import SCOPES, create_key
from tropa.settings import Settings
from tropa.store.db import session_scope


def make_key(engine: sa.Engine, *scopes: str) -> str:
    """A new API key with the given scopes (all of them by default)."""
    with session_scope(engine) as session:
        return create_key(session, "test", list(scopes or SCOPES))


def make_app(client: Client, engine: sa.Engine, settings: Settings, task_queue: str) -> FastAPI:
    """The app on the test's task queue (publishing through it is live at once)."""
    settings.temporal.task_queue = task_queue
    return create_app(settings, engine, client)


@asynccontextmanager
async def api_client(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An async client calling the app in this event loop, so a worker here keeps running."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tropa",
                                 headers={"X-API-Key": key}, timeout=30) as client:
        yield client

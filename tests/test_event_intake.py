"""Single events under load: concurrent `POST /v1/events` share their claim and mark
transactions (group commit) and keep the outcomes of one request at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.journeys import add_customer
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Event

CLIENTS = 20


class Api:
    """The API client and the event type of the journey published for the test."""

    def __init__(self, client: httpx.AsyncClient, event_type: str) -> None:
        self.client, self.event_type = client, event_type

    async def post(self, event_id: str, customer: str) -> httpx.Response:
        return await self.client.post("/v1/events", json={
            "event_id": event_id, "type": self.event_type, "customer_id": customer,
            "occurred_at": datetime.now(UTC).isoformat(), "data": {}})


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[Api]:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine)) as client:
        name = f"intake-{uuid.uuid4().hex[:8]}"
        created = await client.post("/v1/journeys", headers={"Content-Type": "application/yaml"},
                                    content=f"journey: {name}\ntrigger: {{event: {name}}}\n"
                                            "steps:\n  - wait: 1h\n")
        version = created.json()["version"]
        await client.post(f"/v1/journeys/{name}/versions/{version}/publish")
        yield Api(client, name)


async def test_concurrent_single_events_share_transactions(
        api: Api, any_engine: sa.Engine) -> None:
    for i in range(CLIENTS):
        add_customer(any_engine, f"in-{i}")
    claims = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal claims
        claims += statement.startswith("INSERT INTO events")

    sa.event.listen(any_engine, "before_cursor_execute", count)
    try:
        answers = await asyncio.gather(*(api.post(f"ev-{uuid.uuid4()}", f"in-{i}")
                                         for i in range(CLIENTS)))
    finally:
        sa.event.remove(any_engine, "before_cursor_execute", count)
    assert [a.status_code for a in answers] == [202] * CLIENTS
    name = api.event_type
    assert sorted(s for a in answers for s in a.json()["started"]) == sorted(
        f"journey/{name}/in-{i}" for i in range(CLIENTS))
    # One request at a time claimed each event in a statement (and transaction) of its own.
    assert claims <= CLIENTS // 4, claims
    with session_scope(any_engine) as session:
        rows = session.exec(select(Event).where(Event.type == name)).all()
    assert len(rows) == CLIENTS and all(r.routed_at is not None and r.routed_to for r in rows)


async def test_same_event_sent_concurrently_is_routed_once(
        api: Api, any_engine: sa.Engine) -> None:
    add_customer(any_engine, "twice")
    event_id = f"ev-{uuid.uuid4()}"
    answers = await asyncio.gather(*(api.post(event_id, "twice") for _ in range(CLIENTS)))
    assert Counter(a.json()["status"] for a in answers) == {"accepted": 1,
                                                           "duplicate": CLIENTS - 1}
    unknown = await asyncio.gather(api.post(f"ev-{uuid.uuid4()}", "nobody"),
                                   api.post(f"ev-{uuid.uuid4()}", "twice"))
    assert [a.status_code for a in unknown] == [404, 202]
    assert "'nobody'" in unknown[0].json()["detail"]

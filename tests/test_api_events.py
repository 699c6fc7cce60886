"""Events through the API: batches item by item, duplicates never routed twice, limits."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.servers import serve
from tests.support.waiting import eventually
from tropa.settings import Settings


def journey(name: str) -> str:
    return f"""
journey: {name}
trigger: {{event: visit}}
steps:
  - wait: 1h
"""


def event(event_id: str, customer: str, type_: str = "visit") -> dict[str, object]:
    return {"event_id": event_id, "type": type_, "customer_id": customer,
            "occurred_at": datetime.now(UTC).isoformat(), "data": {}}


@pytest.fixture
def app(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> FastAPI:
    return make_app(dev_server.client, any_engine, settings, task_queue)


@pytest.fixture
async def api(app: FastAPI, any_engine: sa.Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app, make_key(any_engine)) as client:
        yield client


async def publish(api: httpx.AsyncClient, text: str) -> str:
    created = await api.post("/v1/journeys", content=text,
                             headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    name, version = created.json()["journey"], created.json()["version"]
    published = await api.post(f"/v1/journeys/{name}/versions/{version}/publish")
    assert published.status_code == 200, published.text
    return version


async def test_batch_reports_each_event_and_one_bad_item_spares_the_rest(
        api: httpx.AsyncClient) -> None:
    name = f"visits-{uuid.uuid4().hex[:8]}"
    await publish(api, journey(name))
    for customer in ("b-1", "b-2"):
        assert (await api.put(f"/v1/customers/{customer}", json={})).status_code == 200
    naive = {**event("e-naive", "b-1"), "occurred_at": "2026-01-01T10:00:00"}
    batch = [event("e-1", "b-1"), event("e-1", "b-1"), event("e-2", "b-2"),
             event("e-3", "nobody"), {"event_id": "e-4", "customer_id": "b-1"}, naive, 42]

    response = await api.post("/v1/events:batch", json={"events": batch})

    assert response.status_code == 202, response.text
    body = response.json()
    assert [(i["event_id"], i["status"]) for i in body["items"]] == [
        ("e-1", "accepted"), ("e-1", "duplicate"), ("e-2", "accepted"), ("e-3", "rejected"),
        ("e-4", "rejected"), ("e-naive", "rejected"), (None, "rejected")]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 4)
    assert body["items"][0]["started"] == [f"journey/{name}/b-1"]
    assert body["items"][2]["started"] == [f"journey/{name}/b-2"]
    assert "PUT /v1/customers/nobody" in body["items"][3]["reason"]
    assert {e["path"] for e in body["items"][4]["errors"]} == {
        "$.events[4].type", "$.events[4].occurred_at"}
    assert body["items"][5]["errors"][0]["path"] == "$.events[5].occurred_at"
    assert body["items"][6]["errors"][0]["path"] == "$.events[6]"

    again = await api.post("/v1/events:batch", json={"events": batch[:3]})
    assert [i["status"] for i in again.json()["items"]] == ["duplicate"] * 3
    single = await api.post("/v1/events", json=event("e-2", "b-2"))
    assert single.json()["status"] == "duplicate"


async def test_batch_over_the_item_limit_is_refused_whole(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/events:batch",
                              json={"events": [event(f"x-{i}", "c") for i in range(1001)]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "$.events"


async def test_single_event_errors(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/v1/events", json=event("s-1", "ghost"))
    assert unknown.status_code == 404
    assert "'ghost'" in unknown.json()["detail"]
    naive = await api.post("/v1/events", json={**event("s-2", "c"), "occurred_at": "2026-01-01"})
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["path"] == "$.occurred_at"
    broken = await api.post("/v1/events", content=b"{not json",
                            headers={"Content-Type": "application/json"})
    assert broken.status_code == 422


async def test_bodies_over_the_limit_get_413_declared_or_chunked(
        dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    settings.api.max_body_bytes = 2_000
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    big = {"events": [event(f"big-{i}", "c") for i in range(40)]}
    async with api_client(app, make_key(any_engine)) as api:
        declared = await api.post("/v1/events:batch", json=big)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 500

        chunked = await api.post("/v1/events:batch", content=chunks(),
                                 headers={"Content-Type": "application/json"})
    assert declared.status_code == chunked.status_code == 413
    assert "2000 bytes" in declared.json()["detail"]


async def test_identical_requests_at_the_same_moment_route_an_event_once(
        dev_server: WorkflowEnvironment, app: FastAPI, any_engine: sa.Engine) -> None:
    # Through a real HTTP server: concurrent requests reach the database concurrently.
    name = f"race-{uuid.uuid4().hex[:8]}"
    key = make_key(any_engine)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key},
                                     timeout=60) as api:
            await publish(api, journey(name))
            customers = [f"r-{i}" for i in range(6)]
            for customer in customers:
                await api.put(f"/v1/customers/{customer}", json={})
            events = [event(f"race-{name}-{c}", c) for c in customers]
            singles = [api.post("/v1/events", json=e) for e in events for _ in range(3)]
            batches = [api.post("/v1/events:batch", json={"events": events}) for _ in range(3)]
            responses = await asyncio.gather(*singles, *batches)

    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    outcomes: Counter[tuple[str, str]] = Counter()
    started: Counter[str] = Counter()
    for r in responses:
        body = r.json()
        for item in body.get("items", [body]):
            outcomes[(item["event_id"], item["status"])] += 1
            started.update(item["started"])
    for e in events:
        assert outcomes[(e["event_id"], "accepted")] == 1, outcomes
        assert outcomes[(e["event_id"], "duplicate")] == 5, outcomes
    assert started == Counter({f"journey/{name}/{c}": 1 for c in customers})
    # Temporal saw one start per customer: a second routing would have restarted the run.
    query = f"TropaJourney='{name}'"
    await eventually(lambda: _count(dev_server, query, len(customers)), timeout=30,
                     message="runs visible")
    assert (await dev_server.client.count_workflows(query)).count == len(customers)


async def _count(env: WorkflowEnvironment, query: str, at_least: int) -> bool:
    return (await env.client.count_workflows(query)).count >= at_least

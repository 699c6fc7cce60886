"""End to end on the local dev server, through the real HTTP API and the sandbox provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.servers import serve
from tests.support.waiting import eventually
from tropa.api.main import create_app
from tropa.dsl.plan import RunStatus
from tropa.services.api_keys import SCOPES, create_key
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.worker.worker import workers_running
from tropa.workflows.journey_run import JourneyRun

JOURNEY = """
journey: welcome-chain
description: a welcome, a reminder, and a last call a day later
trigger: {event: signup}
exit_on: [order.placed]
settings: {category: marketing}
steps:
  - send: {channel: sms, text: "Welcome, {{ customer.first_name }}!"}
  - wait: 2s
  - send: {channel: email, subject: "Hello again", text: "Your welcome bonus waits"}
  # A day, not seconds: the exit event below lands in this wait however slow the machine,
  # so the test never races a clock.
  - wait: 1d
  - send: {channel: sms, text: "Last reminder"}
"""


@pytest.fixture
def api_key(engine: sa.Engine) -> str:
    with session_scope(engine) as session:
        return create_key(session, "e2e", list(SCOPES))


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
              task_queue: str, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    # An async client: the worker shares this event loop and must keep running while a
    # request (a query, say) waits on it.
    settings.temporal.task_queue = task_queue
    app = create_app(settings, engine, dev_server.client)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": api_key},
                                     timeout=30) as client:
            yield client


def event(event_id: str, type_: str, customer: str) -> dict[str, object]:
    return {"event_id": event_id, "type": type_, "customer_id": customer,
            "occurred_at": datetime.now(UTC).isoformat(), "data": {}}


async def test_journey_over_http_stops_on_exit_event(
        dev_server: WorkflowEnvironment, engine: sa.Engine, settings: Settings, task_queue: str,
        api: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    created = await api.post("/v1/journeys", content=JOURNEY,
                       headers={"Content-Type": "application/yaml"})
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    published = await api.post(f"/v1/journeys/welcome-chain/versions/{version}/publish")
    assert published.status_code == 200
    assert published.json()["live_version"] == version
    customer = await api.put("/v1/customers/c-42", json={
        "first_name": "Olga", "phone": "8 (916) 765-43-21", "email": "olga@example.com",
        "consents": {"marketing": {"sms": True, "email": True}}})
    assert customer.status_code == 200
    assert customer.json()["phone"] == "+79167654321"

    async with workers_running(dev_server.client, settings, engine, task_queue=task_queue):
        fired = await api.post("/v1/events", json=event("e-1", "signup", "c-42"))
        assert fired.status_code == 202
        assert fired.json()["started"] == ["journey/welcome-chain/c-42"]
        repeat = await api.post("/v1/events", json=event("e-1", "signup", "c-42"))
        assert repeat.json()["status"] == "duplicate"

        await eventually(lambda: len(sandbox.sent()) >= 2, timeout=60,
                         message="two messages delivered")
        exited = await api.post("/v1/events", json=event("e-2", "order.placed", "c-42"))
        assert exited.json()["signalled"] == ["journey/welcome-chain/c-42"]

        handle = dev_server.client.get_workflow_handle("journey/welcome-chain/c-42",
                                                      result_type=RunStatus)
        final = await handle.result(rpc_timeout=None)
        assert final.state == "exited"

        run = await api.get("/v1/runs/journey/welcome-chain/c-42")
        assert run.status_code == 200
        body = run.json()
        assert body["state"] == "exited"
        assert [s["outcome"] for s in body["steps"]][:3] == ["accepted", "waited", "accepted"]

        # ops find the customer's runs by search attribute, as typed in the Web UI
        found = await eventually(lambda: _ids(dev_server, 'TropaCustomer="c-42"'), timeout=30,
                                 message="run visible by TropaCustomer")
        assert found == ["journey/welcome-chain/c-42"]
        await handle.query(JourneyRun.status)

    sent = sandbox.sent()
    assert [(m["channel"], m["to"]) for m in sent] == [("sms", "+79167654321"),
                                                      ("email", "olga@example.com")]
    assert sent[0]["text"] == "Welcome, Olga!"
    assert len({m["idempotency_key"] for m in sent}) == 2


async def _ids(env: WorkflowEnvironment, query: str) -> list[str]:
    return [wf.id async for wf in env.client.list_workflows(query)]


async def test_journey_errors_come_back_with_line_and_column(api: httpx.AsyncClient) -> None:
    bad = "journey: broken\ntrigger: {event: e}\nsteps:\n  - wait: 1hh\n  - sned: {}\n"
    response = await api.post("/v1/journeys", content=bad,
                              headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [(4, 11), (5, 5)]
    assert "did you mean `send`?" in problems[1]["hint"]


async def test_requests_without_a_key_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/events", json=event("x", "signup", "c-1"),
                              headers={"X-API-Key": ""})
    assert response.status_code == 401

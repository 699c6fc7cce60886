"""/v1/broadcasts on SQLite and PostgreSQL: create and read with progress through a real
worker, list, pause, resume, cancel with their conflicts, and 4xx on bad input."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.api import api_client, make_app, make_key
from tests.support.broadcasts import add_customers, workers
from tests.support.waiting import eventually
from tropa.settings import Settings

EMAIL = {"channel": "email", "subject": "Sale", "text": "Hi {{ customer.first_name }}"}
BODY: dict[str, Any] = {"name": "Friday sale", "audience": {"tag": "bc"}, "send": EMAIL}


@pytest.fixture
async def api(time_skipping: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    settings.delivery.rates = {}
    app = make_app(time_skipping.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine)) as client:
        yield client
    # Runs this test left without a worker would hold the test server's clock.
    with any_engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT workflow_id FROM broadcasts")).scalars().all()
    for workflow_id in ids:
        with contextlib.suppress(RPCError):
            await time_skipping.client.get_workflow_handle(workflow_id).terminate("test over")


async def test_a_broadcast_to_a_saved_audience_runs_and_shows_its_progress(
        api: httpx.AsyncClient, time_skipping: WorkflowEnvironment, any_engine: sa.Engine,
        settings: Settings, sandbox: SandboxServer, task_queue: str) -> None:
    add_customers(any_engine, [f"c-{n}" for n in range(5)])
    add_customers(any_engine, ["c-no"], consents={})
    saved = await api.put("/v1/audiences/friday", content="filter:\n  tag: bc\n",
                          headers={"Content-Type": "application/yaml"})
    assert saved.status_code == 201, saved.text
    async with workers(time_skipping, any_engine, settings, task_queue):
        created = await api.post("/v1/broadcasts", json={
            **BODY, "audience": {"saved": "friday"}, "holdout_percent": 0})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] in ("scheduled", "sending", "completed")
        assert body["workflow_id"] == f"broadcast/{body['id']}"
        assert body["send"] == EMAIL and body["start"] == {"now": True}

        async def done() -> dict[str, Any] | None:
            got = (await api.get(f"/v1/broadcasts/{body['id']}")).json()
            return got if got["status"] == "completed" else None

        final = await eventually(done, message="broadcast completed")
    assert final["recipients"] == 6 and final["holdout"] == 0
    assert final["progress"] == {
        "recipients": 6, "holdout": 0, "pending": 0, "queued": 0, "sent": 5, "delivered": 0,
        "suppressed": {"no_consent": 1}, "failed": 0, "failed_by_reason": {}, "cancelled": 0}
    assert len(sandbox.sent()) == 5
    listed = (await api.get("/v1/broadcasts", params={"status": "completed"})).json()
    assert [b["id"] for b in listed["broadcasts"]] == [body["id"]]
    assert "progress" not in listed["broadcasts"][0]
    assert (await api.get("/v1/broadcasts", params={"status": "paused"})).json() == {
        "broadcasts": [], "next_after": None}


async def test_pause_resume_cancel_and_their_conflicts(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/broadcasts", json={
        **BODY, "start": {"in_local_time": "10:00"}})
    assert created.status_code == 201, created.text
    url = f"/v1/broadcasts/{created.json()['id']}"

    paused = await api.post(f"{url}:pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = await api.post(f"{url}:pause")
    assert again.status_code == 409
    assert "is paused" in again.json()["detail"]
    resumed = await api.post(f"{url}:resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "sending"
    cancelled = await api.post(f"{url}:cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    for action in ("pause", "resume", "cancel"):
        late = await api.post(f"{url}:{action}")
        assert late.status_code == 409, action
        assert "is cancelled" in late.json()["detail"]


@pytest.mark.parametrize(("change", "path"), [
    ({"send": {**EMAIL, "channel": "pigeon"}}, "$.send.channel"),
    ({"send": {"channel": "email", "text": "no subject"}}, "$.send"),
    ({"send": {**EMAIL, "fallback": ["sms"]}}, "$.send"),
    ({"send": {**EMAIL, "text": "{{ nope.x }}"}}, "$.send"),
    ({"send": {**EMAIL, "colour": "red"}}, "$.send.colour"),
    ({"start": {"now": True, "in_local_time": "10:00"}}, "$.start"),
    ({"start": {}}, "$.start"),
    ({"start": {"in_local_time": "25:00"}}, "$.start.in_local_time"),
    ({"start": {"at": "2020-01-01T10:00:00+00:00"}}, "$.start.at"),
    ({"start": {"at": "2030-01-01T10:00:00"}}, "$.start.at"),
    ({"holdout_percent": 100}, "$.holdout_percent"),
    ({"holdout_percent": -1}, "$.holdout_percent"),
    ({"name": ""}, "$.name"),
    ({"audience": {"tagg": "bc"}}, "$.audience.tagg"),
    ({"audience": {"saved": 5}}, "$.audience.saved"),
    ({"extra": 1}, "$.extra"),
])
async def test_bad_input_is_a_422_naming_the_field(
        api: httpx.AsyncClient, change: dict[str, Any], path: str) -> None:
    answer = await api.post("/v1/broadcasts", json={**BODY, **change})
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert errors[0]["path"] == path, errors
    assert errors[0]["message"]
    assert (await api.get("/v1/broadcasts")).json()["broadcasts"] == []


async def test_unknown_things_are_404_and_a_bad_id_422(api: httpx.AsyncClient) -> None:
    missing = await api.post("/v1/broadcasts", json={**BODY, "audience": {"saved": "nope"}})
    assert missing.status_code == 404
    assert "saved audience `nope` does not exist" in missing.json()["detail"]
    unknown = "bc_20260101000000_deadbeef"
    assert (await api.get(f"/v1/broadcasts/{unknown}")).status_code == 404
    assert (await api.post(f"/v1/broadcasts/{unknown}:pause")).status_code == 404
    assert (await api.get("/v1/broadcasts/not-an-id")).status_code == 422


async def test_a_read_only_key_cannot_create(
        time_skipping: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    app = make_app(time_skipping.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine, "read")) as client:
        answer = await client.post("/v1/broadcasts", json=BODY)
        assert answer.status_code == 403
        assert (await client.get("/v1/broadcasts")).status_code == 200

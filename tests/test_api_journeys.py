"""Journeys and runs through the API on the dev server with a real worker and visibility."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.waiting import eventually
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Message
from tropa.worker.worker import workers_running

YAML = {"Content-Type": "application/yaml"}


def journey_yaml(name: str, tag: str = "joined") -> str:
    return f"""journey: {name}
trigger: {{event: joined}}
exit_on: [left]
steps:
  - update_customer: {{add_tags: [{tag}]}}
  - wait: 1h
"""


def log_message(engine: sa.Engine, run: dict[str, Any], step_id: str) -> None:
    """A row in the message log as the send step writes it (the send path is not under test)."""
    with session_scope(engine) as session:
        session.add(Message(
            idempotency_key=f"{run['workflow_id']}/{run['run_id']}/{step_id}/sms",
            journey=run["journey"], workflow_id=run["workflow_id"], step_id=step_id,
            customer_id=run["customer_id"], channel="sms", category="marketing",
            recipient="+79161234567", text="Hi", status="accepted"))


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    async with workers_running(dev_server.client, settings, any_engine, task_queue=task_queue), \
            api_client(app, make_key(any_engine)) as client:
        yield client


async def fire(api: httpx.AsyncClient, type_: str, customer: str) -> dict[str, Any]:
    response = await api.post("/v1/events", json={
        "event_id": str(uuid.uuid4()), "type": type_, "customer_id": customer,
        "occurred_at": datetime.now(UTC).isoformat()})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def get(api: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_validate_stores_nothing_and_reports_line_and_column(
        api: httpx.AsyncClient) -> None:
    name = f"v-{uuid.uuid4().hex[:8]}"
    good = await api.post("/v1/journeys:validate", content=journey_yaml(name), headers=YAML)
    assert good.status_code == 200, good.text
    assert (good.json()["journey"], good.json()["trigger"]) == (name, "joined")
    assert (await api.get(f"/v1/journeys/{name}")).status_code == 404

    bad = await api.post("/v1/journeys:validate", headers=YAML,
                         content=f"journey: {name}\ntrigger: {{event: e}}\nsteps:\n  - wiat: 1h\n")
    assert bad.status_code == 422
    assert [(p["line"], p["column"]) for p in bad.json()["problems"]] == [(4, 5)]
    assert (await api.get(f"/v1/journeys/{name}")).status_code == 404


async def test_journey_lifecycle_with_run_counts_pause_rule_and_runs(
        api: httpx.AsyncClient, any_engine: sa.Engine, settings: Settings) -> None:
    name = f"j-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/journeys", content=journey_yaml(name), headers=YAML)
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    assert (await api.post(f"/v1/journeys/{name}/pause")).status_code == 409  # still a draft
    assert (await api.post(f"/v1/journeys/{name}/versions/nope/publish")).status_code == 404
    assert (await api.post(f"/v1/journeys/{name}/versions/{version}/publish")).status_code == 200
    for n, customer in enumerate(("a-1", "a-2", "a-3")):
        put = await api.put(f"/v1/customers/{name}-{customer}", json={
            "phone": f"+7916123456{n}", "phone_verified": True,  # phones are unique
            "consents": {"marketing": {"sms": True}}})
        assert put.status_code == 200
    a1, a2, a3 = (f"{name}-a-{i}" for i in (1, 2, 3))

    async def waiting(workflow_id: str) -> dict[str, Any] | None:
        run = await get(api, f"/v1/runs/{workflow_id}")
        return run if run["current_step"] == "2-wait" else None

    assert (await fire(api, "joined", a1))["started"] == [f"journey/{name}/{a1}"]
    await fire(api, "joined", a2)
    # At once, while the run may still be in its first (activity) step: the run stops there.
    assert (await fire(api, "left", a1))["signalled"] == [f"journey/{name}/{a1}"]

    async def counted() -> bool:
        listing = {j["name"]: j for j in await get(api, "/v1/journeys")}
        mine = listing[name]["versions"][0]
        return (mine["running"], mine["finished"]) == (1, 1)

    await eventually(counted, timeout=30, message="one running, one finished in the listing")
    assert (await get(api, f"/v1/runs/journey/{name}/{a1}"))["state"] == "exited"

    run_id = f"journey/{name}/{a2}"
    run = await eventually(lambda: waiting(run_id), timeout=30, message="run a-2 waiting")
    assert run["state"] == "running" and run["steps_known"]
    assert [(s["step_id"], s["outcome"]) for s in run["steps"]] == [
        ("1-update_customer", "updated"), ("2-wait", "running")]
    log_message(any_engine, run, "3-send")
    log_message(any_engine, {**run, "run_id": "an-earlier-run"}, "3-send")
    messages = (await get(api, f"/v1/runs/{run_id}"))["messages"]
    assert [(m["step_id"], m["channel"], m["status"]) for m in messages] == [
        ("3-send", "sms", "accepted")]
    assert "recipient" not in messages[0] and "text" not in messages[0]
    assert run["ui_url"] == (f"{settings.temporal.web_ui()}/namespaces/default/workflows/"
                             f"journey%2F{name}%2F{a2}")

    async def listed(path: str, n: int) -> list[dict[str, Any]] | None:
        runs = (await get(api, path))["runs"]
        return runs if len(runs) == n else None

    runs = await eventually(lambda: listed(f"/v1/journeys/{name}/runs", 2), timeout=30,
                            message="both runs listed")
    assert {r["customer_id"] for r in runs} == {a1, a2}
    mine = await eventually(lambda: listed(f"/v1/customers/{a2}/runs", 1), timeout=30,
                            message="a-2's run listed")
    assert mine[0]["workflow_id"] == run_id and mine[0]["version"] == version
    page = await get(api, "/v1/runs", journey=name, page_size=1)
    assert len(page["runs"]) == 1 and page["next_page_token"]
    rest = await get(api, "/v1/runs", journey=name, page_size=1,
                     page_token=page["next_page_token"])
    assert rest["runs"][0]["workflow_id"] != page["runs"][0]["workflow_id"]

    # Paused: no new entries, but runs in flight still get their exit events.
    assert (await api.post(f"/v1/journeys/{name}/pause")).json()["status"] == "paused"
    assert (await fire(api, "joined", a3))["started"] == []
    assert (await fire(api, "left", a2))["signalled"] == [run_id]
    resumed = await api.post(f"/v1/journeys/{name}/resume")
    assert resumed.json()["status"] == "published"
    assert (await fire(api, "joined", a3))["started"] == [f"journey/{name}/{a3}"]

    a3_run = f"journey/{name}/{a3}"
    await eventually(lambda: waiting(a3_run), timeout=30, message="a-3 waits")
    cancelled = await api.post(f"/v1/runs/{a3_run}/cancel")
    assert cancelled.status_code == 202, cancelled.text

    async def ended() -> bool:
        return (await get(api, f"/v1/runs/{a3_run}"))["state"] == "cancelled"

    await eventually(ended, timeout=30, message="a-3 cancelled")
    assert (await api.post(f"/v1/runs/{a3_run}/cancel")).status_code == 409
    assert (await api.post("/v1/runs/journey/nope/x/cancel")).status_code == 404
    assert (await api.get("/v1/runs/journey/nope/x")).status_code == 404

    assert (await api.post(f"/v1/journeys/{name}/archive")).json()["status"] == "archived"
    again = await api.post(f"/v1/journeys/{name}/versions/{version}/publish")
    assert again.status_code == 409
    detail = await get(api, f"/v1/journeys/{name}")
    assert detail["versions"][0]["source_yaml"] == journey_yaml(name)
    assert detail["versions"][0]["live"] is True


async def test_each_version_keeps_its_yaml_and_counts(api: httpx.AsyncClient) -> None:
    name = f"k-{uuid.uuid4().hex[:8]}"
    first = (await api.post("/v1/journeys", content=journey_yaml(name), headers=YAML)).json()
    second_text = journey_yaml(name, "returning")
    second = (await api.post("/v1/journeys", content=second_text, headers=YAML)).json()
    assert first["version"] != second["version"]
    await api.post(f"/v1/journeys/{name}/versions/{second['version']}/publish")
    detail = await get(api, f"/v1/journeys/{name}")
    assert [v["version"] for v in detail["versions"]] == [first["version"], second["version"]]
    assert [v["live"] for v in detail["versions"]] == [False, True]
    assert detail["versions"][1]["source_yaml"] == second_text
    assert detail["status"] == "published" and detail["running"] == 0

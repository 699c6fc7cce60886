"""Merging customers (also while orders keep coming) and the audit of every change, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support.waiting import eventually

YAML = {"Content-Type": "application/yaml"}
JOURNEY = """journey: {name}
trigger: {{event: joined}}
steps:
  - wait: 1h
"""


def order(card: str, total: int, n: int) -> dict[str, Any]:
    return {"customer": {"type": "card", "value": card}, "total": total, "currency": "RUB",
            "placed_at": f"2026-02-{n % 28 + 1:02d}T10:00:00+00:00", "status": "paid"}


async def test_merge_moves_everything_and_the_old_id_reaches_the_survivor(
        api: httpx.AsyncClient, dev_server: WorkflowEnvironment, task_queue: str) -> None:
    await api.put("/v1/customers/c-1", json={
        "phone": "+79161234567", "consents": {"marketing": {"sms": True}}, "tags": ["a"],
        "attributes": {"x": 1}, "registered_at": "2020-01-01"})
    await api.put("/v1/customers/c-2", json={
        "email": "dup@example.com", "consents": {"marketing": {"sms": False, "email": True}},
        "tags": ["b", "a"], "attributes": {"x": 2, "y": 3}, "registered_at": "2018-05-05"})
    await api.put("/v1/customers/c-1/cards/2900000000001", json={})
    await api.put("/v1/customers/c-2/cards/2900000000002", json={})
    await api.put("/v1/orders/o-1", json=order("2900000000001", 100, 1))
    await api.put("/v1/orders/o-2", json=order("2900000000002", 200, 2))

    name = f"merge-{task_queue[-8:]}"
    version = (await api.post("/v1/journeys", content=JOURNEY.format(name=name),
                              headers=YAML)).json()["version"]
    await api.post(f"/v1/journeys/{name}/versions/{version}/publish")
    started = await api.post("/v1/events", json={
        "event_id": f"j-{name}", "type": "joined", "customer_id": "c-2",
        "occurred_at": "2026-01-01T00:00:00+00:00"})
    [workflow_id] = started.json()["started"]

    async def visible() -> bool:
        async for _ in dev_server.client.list_workflows(
                "TropaCustomer = 'c-2' AND ExecutionStatus = 'Running'"):
            return True
        return False

    await eventually(visible, timeout=20, message="run visible")

    # Orders keep arriving for both records while they are merged.
    async def load(n: int) -> int:
        card = "2900000000001" if n % 2 else "2900000000002"
        return (await api.put(f"/v1/orders/load-{n}", json=order(card, 10 + n, n))).status_code

    merged, *codes = await asyncio.gather(
        api.post("/v1/customers/c-1/merge", json={"merge": "c-2"}), *(load(n) for n in range(20)))
    assert merged.status_code == 200, merged.text
    assert codes == [200] * 20
    body = merged.json()
    assert body["runs_in_flight"] == [workflow_id]
    survivor = body["survivor"]
    assert survivor["email"] == "dup@example.com" and survivor["phone"] == "+79161234567"
    assert survivor["consents"] == {"marketing": {"sms": False, "email": True}}
    assert survivor["tags"] == ["a", "b"]
    assert survivor["attributes"] == {"x": 1, "y": 3}
    assert survivor["registered_at"] == "2018-05-05"

    cards = (await api.get("/v1/customers/c-1/cards")).json()
    assert sorted(c["barcode"] for c in cards) == ["2900000000001", "2900000000002"]
    totals = (await api.get("/v1/customers/c-1/purchases")).json()
    assert (totals[0]["orders_count"], totals[0]["total_spent"]) == (
        22, 300 + sum(10 + n for n in range(20)))
    assert (await api.get("/v1/customers:lookup", params={"id": "c-2"})).json()["id"] == "c-1"
    later = await api.post("/v1/events", json={
        "event_id": "after-merge", "type": "visited", "customer_id": "c-2",
        "occurred_at": "2026-01-02T00:00:00+00:00"})
    assert later.status_code == 202, later.text
    by_id = await api.put("/v1/orders/o-3", json={**order("x", 5, 3),
                                                  "customer": {"type": "id", "value": "c-2"}})
    assert by_id.json()["customer_id"] == "c-1"
    assert (await api.post("/v1/customers/c-1/merge", json={"merge": "c-1"})).status_code == 409
    assert (await api.post("/v1/customers/c-1/merge", json={"merge": "c-9"})).status_code == 404
    handle = dev_server.client.get_workflow_handle(workflow_id)
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test over")


async def test_history_names_who_changed_what_without_contacts(api: httpx.AsyncClient) -> None:
    await api.put("/v1/customers/c-1", json={"phone": "+79161234567", "first_name": "Olga"})
    await api.patch("/v1/customers/c-1", json={"email": "olga@example.com", "locale": "en"})
    await api.put("/v1/customers/c-1/consents/marketing/sms", json={"granted": False})
    await api.post("/v1/customers/c-1/tags", json={"add": ["vip"]})
    await api.put("/v1/customers/c-1/cards/2900000000001", json={})
    await api.put("/v1/orders/o-1", json={**order("2900000000001", 100, 1)})
    history = await api.get("/v1/customers/c-1/history")
    assert history.status_code == 200, history.text
    entries = list(reversed(history.json()))
    assert [(e["entity"], e["action"]) for e in entries] == [
        ("customer", "created"), ("customer", "updated"), ("consent", "updated"),
        ("customer", "updated"), ("card", "created"), ("order", "created")]
    assert {(e["actor_kind"], e["actor_name"]) for e in entries} == {("api_key", "test")}
    assert all(e["actor_id"] for e in entries)
    assert entries[1]["changes"] == {"email": {"changed": True},
                                     "locale": {"from": "ru", "to": "en"}}
    assert entries[2]["changes"] == {"consents": {"from": {}, "to": {"marketing": {
        "sms": False}}}}
    text = json.dumps(history.json())
    assert "79161234567" not in text and "olga@" not in text and "Olga" not in text
    assert (await api.get("/v1/customers/nobody/history")).status_code == 404

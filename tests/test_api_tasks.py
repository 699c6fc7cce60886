"""/v1/tasks on SQLite and PostgreSQL: list with filters and pages, assign, complete, cancel;
a finished task answers 409 naming its state; two people completing at once: one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tropa.settings import Settings
from tropa.tasks.store import NewTask, create_once

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def api(time_skipping: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(time_skipping.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine, "read", "tasks:write")) as client:
        yield client


def add_task(engine: sa.Engine, n: int, *, customer: str = "c-1",
             assignee: str = "manager") -> int:
    task = create_once(engine, NewTask(
        idempotency_key=f"journey/cart/{customer}/run/{n}-create_task", customer_id=customer,
        journey="cart", workflow_id=f"journey/cart/{customer}", step_id=f"{n}-create_task",
        text=f"Call about cart {n}", assignee=assignee, due_at=None, notify=[],
        created_at=NOW))
    assert task.id is not None
    return task.id


async def test_list_filters_and_pages_by_id(api: httpx.AsyncClient,
                                            any_engine: sa.Engine) -> None:
    ids = [add_task(any_engine, 1), add_task(any_engine, 2, customer="c-2"),
           add_task(any_engine, 3, assignee="anna")]
    assert add_task(any_engine, 1) == ids[0]  # the same run and step: the same task

    first = (await api.get("/v1/tasks", params={"limit": 2})).json()
    assert [t["id"] for t in first["tasks"]] == ids[:2]
    rest = (await api.get("/v1/tasks", params={"limit": 2, "after": first["next_after"]})).json()
    assert ([t["id"] for t in rest["tasks"]], rest["next_after"]) == ([ids[2]], None)
    by_customer = (await api.get("/v1/tasks", params={"customer_id": "c-2"})).json()
    assert [t["text"] for t in by_customer["tasks"]] == ["Call about cart 2"]
    by_assignee = (await api.get("/v1/tasks", params={"assignee": "anna"})).json()
    assert [t["id"] for t in by_assignee["tasks"]] == [ids[2]]
    assert (await api.get("/v1/tasks", params={"status": "done"})).json()["tasks"] == []

    bad = await api.get("/v1/tasks", params={"status": "finished"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "query.status"


async def test_assign_complete_cancel_and_conflicts(api: httpx.AsyncClient,
                                                    any_engine: sa.Engine) -> None:
    task_id = add_task(any_engine, 1)
    one = (await api.get(f"/v1/tasks/{task_id}")).json()
    assert (one["status"], one["assignee"], one["text"]) == ("open", "manager",
                                                             "Call about cart 1")

    assigned = await api.post(f"/v1/tasks/{task_id}:assign", json={"assignee": "anna"})
    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["status"], assigned.json()["assignee"]) == ("assigned", "anna")
    assert assigned.json()["assigned_at"] is not None

    done = await api.post(f"/v1/tasks/{task_id}:complete",
                          json={"by": "anna", "note": "called, order placed"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["completed_by"], body["note"]) == (
        "done", "anna", "called, order placed")

    again = await api.post(f"/v1/tasks/{task_id}:complete", json={"by": "boris"})
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"task {task_id} is done")
    cancel = await api.post(f"/v1/tasks/{task_id}:cancel")
    assert cancel.status_code == 409 and "is done" in cancel.json()["detail"]

    other = add_task(any_engine, 2)
    cancelled = await api.post(f"/v1/tasks/{other}:cancel")
    assert cancelled.json()["status"] == "cancelled"
    late = await api.post(f"/v1/tasks/{other}:assign", json={"assignee": "anna"})
    assert late.status_code == 409 and f"task {other} is cancelled" in late.json()["detail"]


async def test_unknown_task_bad_body_and_scopes(api: httpx.AsyncClient,
                                                any_engine: sa.Engine) -> None:
    missing = await api.get("/v1/tasks/999999")
    assert missing.status_code == 404 and "task 999999 does not exist" in missing.json()["detail"]
    gone = await api.post("/v1/tasks/999999:complete", json={"by": "anna"})
    assert gone.status_code == 404 and "999999" in gone.json()["detail"]

    task_id = add_task(any_engine, 1)
    bad = await api.post(f"/v1/tasks/{task_id}:complete", json={"by": "", "note": 5})
    assert bad.status_code == 422
    assert sorted(e["path"] for e in bad.json()["errors"]) == ["$.by", "$.note"]

    reader = make_key(any_engine, "read")
    denied = await api.post(f"/v1/tasks/{task_id}:cancel", headers={"X-API-Key": reader})
    assert denied.status_code == 403 and "tasks:write" in denied.json()["detail"]
    assert (await api.get(f"/v1/tasks/{task_id}", headers={"X-API-Key": reader})
            ).json()["status"] == "open"


async def test_concurrent_completes_one_wins(api: httpx.AsyncClient,
                                             any_engine: sa.Engine) -> None:
    task_id = add_task(any_engine, 1)

    answers = await asyncio.gather(*(
        api.post(f"/v1/tasks/{task_id}:complete", json={"by": f"staff-{n}"})
        for n in range(20)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 19, [a.text for a in answers if a.status_code not in
                                         (200, 409)]
    winner = next(a.json()["completed_by"] for a in answers if a.status_code == 200)
    assert (await api.get(f"/v1/tasks/{task_id}")).json()["completed_by"] == winner

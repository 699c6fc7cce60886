"""The API keeps the database off its event loop, and the event router's journey catalogue
follows publish, pause, resume and archive without reloading on a timer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.journeys import add_customer
from tropa.api.deps import get_session
from tropa.services import journeys
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings
from tropa.store.db import session_scope

YAML = {"Content-Type": "application/yaml"}


def journey_yaml(name: str) -> str:
    return f"journey: {name}\ntrigger: {{event: {name}.go}}\nsteps:\n  - exit: done\n"


@pytest.fixture
def app(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> FastAPI:
    return make_app(dev_server.client, any_engine, settings, task_queue)


@pytest.fixture
async def api(app: FastAPI, any_engine: sa.Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app, make_key(any_engine)) as client:
        yield client


async def fire(api: httpx.AsyncClient, name: str, customer: str) -> dict[str, Any]:
    response = await api.post("/v1/events", json={
        "event_id": str(uuid.uuid4()), "type": f"{name}.go", "customer_id": customer,
        "occurred_at": datetime.now(UTC).isoformat()})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def test_no_async_route_takes_a_database_session(app: FastAPI) -> None:
    routes = list(_all_routes(app.routes))
    assert len(routes) >= 18
    offenders = [
        route.path for route in routes
        if asyncio.iscoroutinefunction(getattr(route, "endpoint", None))
        and any(d.call is get_session
                for d in _all_dependencies(getattr(route, "dependant", None)))]
    assert offenders == []


def _all_routes(routes: Any) -> Iterator[Any]:
    for route in routes:
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is not None:  # an included router
            yield from _all_routes(nested)
        elif hasattr(route, "dependant"):
            yield route


def _all_dependencies(dependant: Any) -> list[Any]:
    if dependant is None:
        return []
    found = list(dependant.dependencies)
    for dep in dependant.dependencies:
        found += _all_dependencies(dep)
    return found


async def test_journeys_and_events_never_touch_the_database_on_the_event_loop(
        api: httpx.AsyncClient, any_engine: sa.Engine) -> None:
    add_customer(any_engine, "loop-1")
    on_loop: list[str] = []

    def check(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        on_loop.append(statement.split()[0] + " " + statement[:60])

    sa.event.listen(any_engine, "before_cursor_execute", check)
    try:
        name = f"loop-{uuid.uuid4().hex[:8]}"
        created = await api.post("/v1/journeys", content=journey_yaml(name), headers=YAML)
        assert created.status_code == 201, created.text
        version = created.json()["version"]
        assert (await api.get("/v1/journeys")).status_code == 200
        assert (await api.get(f"/v1/journeys/{name}")).status_code == 200
        assert (await api.get("/v1/journeys/nope")).status_code == 404
        published = await api.post(f"/v1/journeys/{name}/versions/{version}/publish")
        assert published.status_code == 200
        assert (await fire(api, name, "loop-1"))["started"]
        for action in ("pause", "resume", "archive"):
            assert (await api.post(f"/v1/journeys/{name}/{action}")).status_code == 200
    finally:
        sa.event.remove(any_engine, "before_cursor_execute", check)
    assert on_loop == []


async def test_publish_pause_resume_archive_are_live_for_the_next_event(
        api: httpx.AsyncClient, any_engine: sa.Engine) -> None:
    add_customer(any_engine, "live-1")
    name = f"live-{uuid.uuid4().hex[:8]}"
    version = (await api.post("/v1/journeys", content=journey_yaml(name),
                              headers=YAML)).json()["version"]
    assert (await fire(api, name, "live-1"))["started"] == []  # a draft: not live
    await api.post(f"/v1/journeys/{name}/versions/{version}/publish")
    assert (await fire(api, name, "live-1"))["started"] == [f"journey/{name}/live-1"]
    await api.post(f"/v1/journeys/{name}/pause")
    assert (await fire(api, name, "live-1"))["started"] == []
    await api.post(f"/v1/journeys/{name}/resume")
    assert (await fire(api, name, "live-1"))["started"] == [f"journey/{name}/live-1"]
    await api.post(f"/v1/journeys/{name}/archive")
    assert (await fire(api, name, "live-1"))["started"] == []


async def test_catalogue_reloads_only_when_what_is_live_changed(engine: sa.Engine) -> None:
    catalogue = JourneyCatalogue(engine, max_age_seconds=0)  # check on every event
    empty = await catalogue.current()
    assert await catalogue.current() is empty  # nothing changed: the same snapshot

    # Published by another process: no invalidate() here, the stamp shows the change.
    name = f"other-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        row = journeys.create_version(session, journey_yaml(name))
    with session_scope(engine) as session:
        journeys.publish(session, name, row.version)
    live = await catalogue.current()
    assert [p.journey for p in live.triggers[f"{name}.go"]] == [name]
    assert await catalogue.current() is live
    with session_scope(engine) as session:
        journeys.change_status(session, name, "pause")
    assert f"{name}.go" not in (await catalogue.current()).triggers

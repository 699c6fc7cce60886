"""Hostile journeys over the HTTP API: refused with 4xx and their place, never a 500, never a
stall of other requests; trigger keys that are too long or too costly skip one event."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.journey_yaml import journey_texts
from tests.support.servers import serve
from tests.test_dsl_hostile import HEADER, HOSTILE_FILES, billion_laughs
from tropa.settings import Settings

YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def app(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> FastAPI:
    return make_app(dev_server.client, any_engine, settings, task_queue)


@pytest.fixture
async def api(app: FastAPI, any_engine: sa.Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app, make_key(any_engine)) as client:
        yield client


@pytest.mark.parametrize("name", ["billion laughs", "alias of itself",
                                  "10,000-deep flow sequence", "python tag", "NUL character",
                                  "deep template", "wait of 99999999999999 weeks",
                                  "timestamp past 9999 in UTC", "no such day",
                                  "literal key over the limit", "too large"])
async def test_hostile_journey_gets_422_with_its_place(api: httpx.AsyncClient,
                                                       name: str) -> None:
    text, expected = HOSTILE_FILES[name]
    expected = expected.replace("j.yaml", "<request>")
    for path in ("/v1/journeys:validate", "/v1/journeys"):
        response = await asyncio.wait_for(api.post(path, content=text, headers=YAML), 30)
        assert response.status_code == 422, (path, response.text[:300])
        [problem, *_] = response.json()["problems"]
        assert problem["line"] is not None and problem["column"] is not None
        assert expected in problem["text"]


async def test_heavy_templates_validate_without_being_evaluated(api: httpx.AsyncClient) -> None:
    text = HEADER + ("  - send: {channel: sms, text: \"{{ 'a' * 10**9 }}\"}\n"
                     "  - branch: {if: \"('a' * 10**9)|length > 1\", then: [{exit: x}]}\n")
    response = await asyncio.wait_for(
        api.post("/v1/journeys:validate", content=text, headers=YAML), 30)
    assert response.status_code == 200, response.text


async def test_a_bomb_sent_to_validate_does_not_hold_up_events(app: FastAPI,
                                                               any_engine: sa.Engine) -> None:
    # A real server in its own thread: were validation to block its event loop, the events
    # below would wait, and this test's deadline (on its own loop) would still fire.
    heavy = HEADER + "".join(
        f'  - send: {{channel: sms, text: "{{{{ customer.first_name }}}} {i} '
        f'{{{{ event.data.x{i} }}}}"}}\n' for i in range(3000))
    bombs = [billion_laughs(), HOSTILE_FILES["10,000-deep flow sequence"][0],
             HEADER + "  - send: {channel: sms, text: \"{{ 'a' * 10**9 }}\"}\n",
             *(heavy.replace("data.x", f"data.v{n}_") for n in range(4))]
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60,
                                     headers={"X-API-Key": make_key(any_engine)}) as api:
            assert (await api.put("/v1/customers/flow-1", json={})).status_code == 200

            async def events() -> list[int]:
                statuses = []
                for i in range(20):
                    response = await api.post("/v1/events", json={
                        "event_id": f"flow-{uuid.uuid4().hex}", "type": "visit",
                        "customer_id": "flow-1", "occurred_at": datetime.now(UTC).isoformat(),
                        "data": {"i": i}})
                    statuses.append(response.status_code)
                return statuses

            validations = [api.post("/v1/journeys:validate", content=b, headers=YAML)
                           for b in bombs]
            *answers, statuses = await asyncio.wait_for(
                asyncio.gather(*validations, events()), 120)
    assert statuses == [202] * 20
    assert [a.status_code for a in answers] == [422, 422, 200, 200, 200, 200, 200]


KEYED = """journey: {name}
trigger:
  event: visit
  key: "{key}"
steps:
  - wait: 1h
"""


async def publish(api: httpx.AsyncClient, text: str) -> None:
    created = await api.post("/v1/journeys", content=text, headers=YAML)
    assert created.status_code == 201, created.text
    body = created.json()
    published = await api.post(
        f"/v1/journeys/{body['journey']}/versions/{body['version']}/publish")
    assert published.status_code == 200, published.text


async def test_a_long_or_costly_key_skips_that_event_only(api: httpx.AsyncClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    looping = ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
               "{% endfor %}{{ event.data.cart }}")
    await publish(api, KEYED.format(name=f"long-{suffix}", key="{{ event.data.cart }}"))
    await publish(api, KEYED.format(name=f"loop-{suffix}", key=looping))
    assert (await api.put("/v1/customers/key-1", json={})).status_code == 200

    async def visit(cart: str) -> dict[str, Any]:
        response = await asyncio.wait_for(api.post("/v1/events", json={
            "event_id": f"key-{uuid.uuid4().hex}", "type": "visit", "customer_id": "key-1",
            "occurred_at": datetime.now(UTC).isoformat(), "data": {"cart": cart}}), 60)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    long = await visit("c" * 300)
    reasons = {s["journey"]: s["reason"] for s in long["skipped"]}
    assert "renders to 300 characters; at most 100" in reasons[f"long-{suffix}"]
    assert "too much work" in reasons[f"loop-{suffix}"]
    short = await visit("cart-1")
    assert f"journey/long-{suffix}/key-1/cart-1" in short["started"]


def test_generated_journey_yaml_never_gets_a_server_error(app: FastAPI,
                                                          any_engine: sa.Engine) -> None:
    key = make_key(any_engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [schema["/v1/journeys:validate"]["POST"], schema["/v1/journeys"]["POST"]]
    seen: Counter[str] = Counter()
    failures: list[str] = []

    @given(text=journey_texts())
    @hypothesis_settings(max_examples=50, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def call(text: str) -> None:
        answers = []
        for operation in operations:
            case = operation.Case(body=text.encode("utf-8", "surrogatepass"),
                                  media_type="application/yaml")
            response = case.call(headers={"X-API-Key": key})
            answers.append(response.status_code)
            seen[f"{operation.label} {response.status_code}"] += 1
            if response.status_code >= 500:
                failures.append(f"{operation.label}: {response.status_code} "
                                f"{response.text[:200]} for {text[:200]!r}")
        # validate and create agree: what validates is stored, what does not is refused
        if answers[0] in (200, 422):
            assert answers[1] == {200: 201, 422: 422}[answers[0]], (answers, text[:300])

    call()
    print(f"\ngenerated journeys: {dict(seen)}")
    assert failures == []
    assert seen["POST /v1/journeys:validate 200"] > 0
    assert seen["POST /v1/journeys:validate 422"] > 0

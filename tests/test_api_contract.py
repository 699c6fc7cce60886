"""The error contract: schemathesis against the OpenAPI document, and the auth rules."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tropa.services.api_keys import hash_key
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import ApiKey

EXAMPLES_PER_MODE = 25


@schemathesis.serializer("application/yaml")
def _yaml(_ctx: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def test_no_server_error_for_any_generated_request(
        dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
        task_queue: str) -> None:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    key = make_key(any_engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    sent: Counter[str] = Counter()
    failures: list[str] = []
    unsatisfiable: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                response = case.call(headers={"X-API-Key": key})
                name = f"{case.operation.label} {case.meta.generation.mode.value}" \
                    if case.meta else case.operation.label
                sent[name] += 1
                if response.status_code >= 500:
                    failures.append(f"{name}: {response.status_code} {response.text[:300]}")

            try:
                call()
            except Unsatisfiable:
                # No negative case exists for an operation without inputs (GET /healthz).
                unsatisfiable.append(f"{operation.label} {mode.value}")
    elapsed = time.monotonic() - started
    operations = len({label.rsplit(" ", 1)[0] for label in sent})
    print(f"\nschemathesis: {operations} operations, {sum(sent.values())} requests "
          f"in {elapsed:.1f}s; no cases for {unsatisfiable}")
    assert operations >= 38  # customers, cards, tags, orders, imports, merge, history included
    assert failures == []


@pytest.fixture
def app_and_engine(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
                   task_queue: str) -> tuple[Any, sa.Engine]:
    return make_app(dev_server.client, any_engine, settings, task_queue), any_engine


async def test_keys_are_checked_and_scopes_enforced(
        app_and_engine: tuple[Any, sa.Engine]) -> None:
    app, engine = app_and_engine
    reader, writer, admin = (make_key(engine, "read"), make_key(engine, "events:write"),
                             make_key(engine, "admin"))
    async with api_client(app, "") as api:
        missing = await api.get("/v1/customers/c-1", headers={"X-API-Key": ""})
        assert missing.status_code == 401
        assert "X-API-Key" in missing.json()["detail"]
        wrong = await api.get("/v1/customers/c-1", headers={"X-API-Key": "tropa_nope"})
        assert wrong.status_code == 401

        def as_(key: str) -> dict[str, str]:
            return {"X-API-Key": key}

        assert (await api.put("/v1/customers/c-1", json={}, headers=as_(reader))).status_code == 403
        assert (await api.put("/v1/customers/c-1", json={}, headers=as_(writer))).status_code == 200
        assert (await api.get("/v1/customers/c-1", headers=as_(writer))).status_code == 403
        assert (await api.get("/v1/customers/c-1", headers=as_(reader))).status_code == 200
        journey = await api.post("/v1/journeys", content="journey: x\n", headers={
            **as_(writer), "Content-Type": "application/yaml"})
        assert journey.status_code == 403
        assert "`admin`" in journey.json()["detail"]
        assert (await api.get("/v1/customers/c-1", headers=as_(admin))).status_code == 200

    with session_scope(engine) as session:
        # Keys are stored hashed: the plain key appears nowhere in the table.
        rows = list(session.exec(sa.select(ApiKey)).scalars())  # type: ignore[call-overload]
        assert {r.key_hash for r in rows} >= {hash_key(reader), hash_key(admin)}
        assert all(reader not in (r.key_hash, r.name) for r in rows)


async def test_openapi_documents_the_limits_and_errors(
        app_and_engine: tuple[Any, sa.Engine]) -> None:
    app, _ = app_and_engine
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://tropa") as api:
        doc = (await api.get("/openapi.json")).json()
    batch = doc["paths"]["/v1/events:batch"]["post"]
    assert set(batch["responses"]) >= {"202", "401", "403", "413", "422"}
    assert "bytes get 413" in doc["info"]["description"]

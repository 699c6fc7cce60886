"""Every acknowledged write to a customer survives 20 concurrent clients, on SQLite and
PostgreSQL; clients that read-modify-write use ETag / If-Match and get 412 when stale."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.support.api import make_app, make_key
from tests.support.servers import serve
from tropa.dsl.plan import RunRef, StepCall
from tropa.settings import Settings
from tropa.steps.update_customer import apply_update

CLIENTS = 20


@pytest.fixture
def http(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
         task_queue: str) -> Iterator[httpx.Client]:
    """A client of the API served over real HTTP by uvicorn (its own thread pool)."""
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60, headers={
            "X-API-Key": make_key(any_engine)}) as client:
        yield client


def together(n: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`call(i)` for i in 0..n-1 from n threads released at the same moment."""
    gate = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def all_ok(responses: list[httpx.Response]) -> None:
    bad = [(r.status_code, r.text) for r in responses if r.status_code != 200]
    assert not bad, bad


def new_customer(http: httpx.Client, **body: Any) -> str:
    customer_id = f"c-{uuid.uuid4().hex[:10]}"
    assert http.put(f"/v1/customers/{customer_id}", json=body).status_code == 200
    return customer_id


def stored(http: httpx.Client, customer_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/customers/{customer_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_concurrent_attribute_patches_all_survive(http: httpx.Client) -> None:
    cid = new_customer(http, attributes={"kept": True})
    all_ok(together(CLIENTS, lambda i: http.patch(f"/v1/customers/{cid}/attributes",
                                                   json={f"k{i}": i})))
    assert stored(http, cid)["attributes"] == {"kept": True, **{f"k{i}": i for i in range(CLIENTS)}}


def test_concurrent_tag_changes_all_survive(http: httpx.Client) -> None:
    cid = new_customer(http, tags=[f"old{i}" for i in range(CLIENTS)])
    all_ok(together(CLIENTS, lambda i: http.post(f"/v1/customers/{cid}/tags", json={
        "add": [f"t{i}"], "remove": [f"old{i}"]})))
    assert sorted(stored(http, cid)["tags"]) == sorted(f"t{i}" for i in range(CLIENTS))


def test_an_opt_out_racing_grants_on_other_channels_is_kept(http: httpx.Client) -> None:
    cid = new_customer(http, consents={"marketing": {"sms": True}})
    channels = ["sms"] + [f"ch{i}" for i in range(1, CLIENTS)]
    all_ok(together(CLIENTS, lambda i: http.put(
        f"/v1/customers/{cid}/consents/marketing/{channels[i]}", json={"granted": i != 0})))
    consents = stored(http, cid)["consents"]["marketing"]
    assert consents == {"sms": False, **dict.fromkeys(channels[1:], True)}


def test_concurrent_profile_patches_all_survive(http: httpx.Client) -> None:
    cid = new_customer(http)
    fields: list[tuple[str, Any]] = [
        ("first_name", "Olga"), ("last_name", "Ivanova"), ("email", "olga@example.com"),
        ("phone", "+79161234567"), ("time_zone", "Europe/Moscow"), ("locale", "en"),
        ("birthday", "1990-05-01"), ("phone_verified", True), ("email_verified", True),
        ("external_id", f"crm-{cid}")]
    # Two clients per field, both sending the same value, plus the attribute merges.
    all_ok(together(CLIENTS, lambda i: http.patch(f"/v1/customers/{cid}",
                                                   json=dict([fields[i % len(fields)]]))))
    customer = stored(http, cid)
    assert {name: customer[name] for name, _ in fields} == dict(fields)


def test_concurrent_full_puts_leave_exactly_one_clients_record(http: httpx.Client) -> None:
    cid = new_customer(http)

    def record(i: int) -> dict[str, Any]:
        return {"first_name": f"n{i}", "last_name": f"l{i}", "locale": "en" if i % 2 else "ru",
                "tags": [f"t{i}"], "attributes": {"i": i},
                "consents": {"marketing": {"sms": bool(i % 2)}}}

    all_ok(together(CLIENTS, lambda i: http.put(f"/v1/customers/{cid}", json=record(i))))
    customer = stored(http, cid)
    i = customer["attributes"]["i"]
    assert {k: customer[k] for k in record(i)} == record(i)


def test_concurrent_creates_of_one_customer_all_succeed(http: httpx.Client) -> None:
    cid = f"new-{uuid.uuid4().hex[:10]}"
    responses = together(CLIENTS, lambda i: http.put(f"/v1/customers/{cid}",
                                                     json={"attributes": {"i": i}}))
    all_ok(responses)
    assert stored(http, cid)["version"] == CLIENTS


def test_concurrent_bulk_upserts_in_opposite_orders(http: httpx.Client) -> None:
    ids = [f"b-{uuid.uuid4().hex[:8]}" for _ in range(10)]

    def bulk(i: int) -> httpx.Response:
        order = ids if i % 2 else ids[::-1]
        return http.post("/v1/customers:bulk", json={"customers": [
            {"id": cid, "first_name": f"n{i}", "attributes": {"i": i}} for cid in order]})

    responses = together(CLIENTS, bulk)
    all_ok(responses)
    assert all(r.json()["rejected"] == 0 for r in responses)
    for cid in ids:
        customer = stored(http, cid)
        assert customer["first_name"] == f"n{customer['attributes']['i']}"
        assert customer["version"] == CLIENTS


def test_read_modify_write_with_if_match_counts_every_client(http: httpx.Client) -> None:
    cid = new_customer(http, attributes={"count": 0})
    stale = 0

    def increment(_: int) -> httpx.Response:
        nonlocal stale
        while True:
            current = http.get(f"/v1/customers/{cid}")
            count = current.json()["attributes"]["count"]
            answer = http.patch(f"/v1/customers/{cid}/attributes", json={"count": count + 1},
                                headers={"If-Match": current.headers["ETag"]})
            if answer.status_code != 412:
                return answer
            stale += 1

    all_ok(together(CLIENTS, increment))
    assert stored(http, cid)["attributes"]["count"] == CLIENTS
    assert stale > 0  # the race really happened and was caught


def test_update_customer_steps_of_many_runs_all_apply(any_engine: sa.Engine,
                                                      http: httpx.Client) -> None:
    cid = new_customer(http)

    def step(i: int) -> httpx.Response:
        run = RunRef(workflow_id=f"journey/j/{cid}/{i}", run_id="r", journey="j", version="v",
                     customer_id=cid, category="marketing")
        apply_update(any_engine, StepCall(run=run, step_id="1-update_customer",
                                          step_type="update_customer",
                                          params={"add_tags": [f"s{i}"], "set": {f"a{i}": i}},
                                          context={}, idempotency_key=f"{cid}/{i}"))
        return httpx.Response(200)

    together(CLIENTS, step)
    customer = stored(http, cid)
    assert sorted(customer["tags"]) == sorted(f"s{i}" for i in range(CLIENTS))
    assert customer["attributes"] == {f"a{i}": i for i in range(CLIENTS)}


def test_etag_and_if_match(http: httpx.Client) -> None:
    cid = new_customer(http, first_name="Olga")
    read = http.get(f"/v1/customers/{cid}")
    etag = read.headers["ETag"]
    assert etag == f'"{read.json()["version"]}"'

    first = http.patch(f"/v1/customers/{cid}", json={"last_name": "Ivanova"},
                       headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] != etag
    for method, path, body in (
            ("PATCH", "", {"last_name": "Petrova"}),
            ("PUT", "", {"first_name": "Anna"}),
            ("PATCH", "/attributes", {"x": 1}),
            ("POST", "/tags", {"add": ["x"]}),
            ("PUT", "/consents/marketing/sms", {"granted": True})):
        stale = http.request(method, f"/v1/customers/{cid}{path}", json=body,
                             headers={"If-Match": etag})
        assert stale.status_code == 412, (method, path, stale.text)
        assert first.headers["ETag"] in stale.json()["detail"]
        assert stale.headers["ETag"] == first.headers["ETag"]
    assert stored(http, cid)["last_name"] == "Ivanova"
    anything = http.patch(f"/v1/customers/{cid}", json={"last_name": "Sidorova"},
                          headers={"If-Match": "*"})
    assert anything.status_code == 200
    missing = http.put("/v1/customers/nobody-yet", json={}, headers={"If-Match": "*"})
    assert missing.status_code == 412
    assert http.get("/v1/customers/nobody-yet").status_code == 404

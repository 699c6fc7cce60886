"""Orders on SQLite and PostgreSQL: idempotent PUT, status history, the events they raise,
purchase totals exact under concurrent writes, refunds, orders from `order.placed` events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Event


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine)) as client:
        await client.put("/v1/customers/c-1", json={"phone": "+7 916 765 43 21"})
        assert (await client.put("/v1/customers/c-1/cards/2900001234567", json={})).status_code \
            == 200
        yield client


def order(total: int, status: str = "placed", **extra: Any) -> dict[str, Any]:
    return {"customer": {"type": "card", "value": "2900001234567"},
            "placed_at": "2026-03-01T12:00:00+03:00", "status": status, "currency": "RUB",
            "total": total, "items": [{"sku": "A-1", "name": "Tea", "quantity": 2,
                                       "price": total // 2}],
            "store": "Kazan-1", "channel": "offline",
            "attributes": {"utm_source": "email", "promo": "SPRING"}, **extra}


def events_of(engine: sa.Engine, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(engine) as session:
        rows = session.exec(select(Event).where(col(Event.event_id).startswith(
            f"order:{order_id}:")).order_by(col(Event.received_at)))
        return [(e.type, e.data) for e in rows]


async def test_put_is_idempotent_and_status_changes_raise_events(
        api: httpx.AsyncClient, any_engine: sa.Engine) -> None:
    first = await api.put("/v1/orders/o-1", json=order(150_000, "awaiting_payment"))
    assert first.status_code == 200, first.text
    assert (first.json()["outcome"], first.json()["customer_id"]) == ("created", "c-1")
    again = await api.put("/v1/orders/o-1", json=order(150_000, "awaiting_payment"))
    assert again.json()["outcome"] == "unchanged"
    assert (await api.get("/v1/customers/c-1/purchases")).json() == []  # unpaid: no purchase

    paid = await api.put("/v1/orders/o-1", json=order(150_000, "paid"))
    assert paid.json()["outcome"] == "updated"
    stored = (await api.get("/v1/orders/o-1")).json()
    assert [(c["from_status"], c["to_status"]) for c in stored["status_history"]] == [
        (None, "awaiting_payment"), ("awaiting_payment", "paid")]
    totals = (await api.get("/v1/customers/c-1/purchases")).json()
    assert [(t["currency"], t["orders_count"], t["total_spent"]) for t in totals] == [
        ("RUB", 1, 150_000)]
    assert totals[0]["last_purchase_at"].startswith("2026-03-01T09:00:00")

    refund = await api.put("/v1/orders/o-1", json=order(150_000, "paid", refunded=50_000))
    assert refund.status_code == 200
    totals = (await api.get("/v1/customers/c-1/purchases")).json()
    assert (totals[0]["orders_count"], totals[0]["total_spent"]) == (1, 100_000)
    await api.put("/v1/orders/o-1", json=order(150_000, "refunded", refunded=150_000))
    assert (await api.get("/v1/customers/c-1/purchases")).json()[0]["orders_count"] == 0

    kinds = events_of(any_engine, "o-1")
    assert [k for k, _ in kinds] == ["order.placed", "order.status_changed", "order.refunded",
                                     "order.status_changed", "order.refunded"]
    assert (kinds[1][1]["from"], kinds[1][1]["to"]) == ("awaiting_payment", "paid")
    assert kinds[0][1]["items"][0]["sku"] == "A-1" and kinds[0][1]["total"] == 150_000
    assert [d["amount"] for k, d in kinds if k == "order.refunded"] == [50_000, 100_000]


async def test_bad_orders_are_4xx(api: httpx.AsyncClient) -> None:
    cases = [
        (order(100, currency="rub"), 422), (order(-1), 422), (order(100, refunded=200), 422),
        ({**order(100), "customer": {"type": "card", "value": "nope"}}, 404),
        ({**order(100), "customer": {"type": "phone", "value": "12"}}, 422),
        ({**order(100), "placed_at": "2026-03-01T12:00:00"}, 422),
    ]
    for body, status in cases:
        response = await api.put("/v1/orders/o-bad", json=body)
        assert response.status_code == status, (body, response.text)
    await api.put("/v1/customers/c-2", json={})
    await api.put("/v1/orders/o-2", json=order(100))
    other = await api.put("/v1/orders/o-2", json={
        **order(100), "customer": {"type": "id", "value": "c-2"}})
    assert other.status_code == 409 and "'c-1'" in other.json()["detail"]


async def test_concurrent_orders_keep_totals_exact(api: httpx.AsyncClient) -> None:
    async def put(n: int) -> int:
        response = await api.put(f"/v1/orders/p-{n}", json={
            **order(1000 + n), "placed_at": f"2026-01-{n + 1:02d}T10:00:00+00:00"})
        return response.status_code

    assert await asyncio.gather(*(put(n) for n in range(20))) == [200] * 20
    # The same orders again, and status changes, racing each other.
    await asyncio.gather(*(put(n) for n in range(20)),
                         *(api.put(f"/v1/orders/p-{n}", json={
                             **order(1000 + n, "cancelled"),
                             "placed_at": f"2026-01-{n + 1:02d}T10:00:00+00:00"})
                           for n in range(0, 20, 5)))
    totals = (await api.get("/v1/customers/c-1/purchases")).json()[0]
    kept = [n for n in range(20) if n % 5 != 0]
    assert (await api.get("/v1/orders/p-0")).json()["status"] in ("placed", "cancelled")
    statuses = [(await api.get(f"/v1/orders/p-{n}")).json()["status"] for n in range(0, 20, 5)]
    counted = kept + [n for n, s in zip(range(0, 20, 5), statuses, strict=True) if s == "placed"]
    assert totals["orders_count"] == len(counted)
    assert totals["total_spent"] == sum(1000 + n for n in counted)
    assert totals["first_purchase_at"][:10] == f"2026-01-{min(counted) + 1:02d}"
    assert totals["last_purchase_at"][:10] == "2026-01-20"


async def test_order_placed_event_records_the_order(api: httpx.AsyncClient,
                                                    any_engine: sa.Engine) -> None:
    event = {"event_id": "e-1", "type": "order.placed", "customer_id": "c-1",
             "occurred_at": "2026-04-01T10:00:00+00:00",
             "data": {"order_id": "web-7", "total": 4200, "currency": "RUB",
                      "channel": "online", "payment_url": "https://pay.example/7"}}
    accepted = await api.post("/v1/events", json=event)
    assert accepted.status_code == 202, accepted.text
    stored = (await api.get("/v1/orders/web-7")).json()
    assert (stored["total"], stored["channel"], stored["placed_at"][:10]) == (
        4200, "online", "2026-04-01")
    assert events_of(any_engine, "web-7") == []  # the event itself was the placement
    bad = await api.post("/v1/events", json={**event, "event_id": "e-2",
                                              "data": {"order_id": "web-8", "total": "lots"}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "$.data.total"
    plain = await api.post("/v1/events", json={**event, "event_id": "e-3",
                                                "data": {"order_id": "web-9"}})
    assert plain.status_code == 202
    assert (await api.get("/v1/orders/web-9")).status_code == 404


async def test_order_placed_in_a_batch_records_the_order(api: httpx.AsyncClient) -> None:
    base = {"type": "order.placed", "customer_id": "c-1",
            "occurred_at": "2026-04-01T10:00:00+00:00"}
    batch = await api.post("/v1/events:batch", json={"events": [
        {**base, "event_id": "b-1", "data": {"order_id": "web-1", "total": 100}},
        {**base, "event_id": "b-2", "data": {"order_id": "web-2", "total": -5}},
        {**base, "event_id": "b-3", "customer_id": "nobody",
         "data": {"order_id": "web-3", "total": 5}}]})
    assert batch.status_code == 202, batch.text
    assert [i["status"] for i in batch.json()["items"]] == ["accepted", "rejected", "rejected"]
    assert batch.json()["items"][1]["errors"][0]["path"] == "$.events[1].data.total"
    assert (await api.get("/v1/orders/web-1")).json()["total"] == 100
    assert (await api.get("/v1/orders/web-2")).status_code == 404

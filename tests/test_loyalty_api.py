"""The loyalty API on SQLite and PostgreSQL: balances by any identifier, accruals, write-offs,
cancels, refunds, levels, scopes and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.journeys import add_customer
from tropa.loyalty.card_link import card_link
from tropa.settings import Settings
from tropa.store.db import session_scope
from tropa.store.models import Event

PHONE = {"type": "phone", "value": "8 (916) 123-45-67"}


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    add_customer(any_engine, "c-1", external_id="crm-1")
    async with api_client(app, make_key(any_engine)) as client:
        yield client


async def accrue(api: httpx.AsyncClient, key: str, **body: object) -> httpx.Response:
    return await api.post("/v1/loyalty/accruals", json={
        "identifier": PHONE, "idempotency_key": key, **body})


async def test_accrue_and_write_off_by_any_identifier(api: httpx.AsyncClient) -> None:
    soon = await accrue(api, "a1", amount=300, expires_in="14d", reason="birthday")
    later = await accrue(api, "a2", amount=500, expires_in="30d")
    pending = await accrue(api, "a3", amount=200, activates_in="2d")
    assert soon.status_code == later.status_code == pending.status_code == 200, soon.text
    assert pending.json()["balance"] == 800 and pending.json()["pending"] == 200

    spent = await api.post("/v1/loyalty/write-offs", json={
        "identifier": {"type": "external_id", "value": "crm-1"}, "amount": 400,
        "reason": "order o-1", "order_id": "o-1", "idempotency_key": "w1"})
    assert spent.status_code == 200, spent.text
    draws = spent.json()["draws"]
    # nearest expiry first: all 300 of the 14-day accrual, then 100 of the 30-day one
    assert [(d["accrual_id"], d["amount"]) for d in draws] == [
        (soon.json()["operation_id"], 300), (later.json()["operation_id"], 100)]

    balance = await api.get("/v1/loyalty/balance", params={"phone": "+79161234567"})
    assert balance.status_code == 200
    assert (balance.json()["bonus"]["balance"], balance.json()["bonus"]["pending"]) == (400, 200)
    assert balance.json()["bonus"]["next_expiry"]["amount"] == 400

    repeat = await api.post("/v1/loyalty/write-offs", json={
        "identifier": PHONE, "amount": 999, "idempotency_key": "w1"})
    assert repeat.json()["operation_id"] == spent.json()["operation_id"]
    assert repeat.json()["repeated"] is True

    over = await api.post("/v1/loyalty/write-offs", json={
        "identifier": PHONE, "amount": 401, "idempotency_key": "w2"})
    assert over.status_code == 409
    assert over.json()["available"] == 400

    cancelled = await api.post(f"/v1/loyalty/operations/{spent.json()['operation_id']}/cancel",
                               json={"idempotency_key": "c1", "reason": "mistake"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["balance"] == 800
    # each amount went back to its own accrual, with that accrual's burn time
    assert [(d["accrual_id"], d["expires_at"]) for d in cancelled.json()["draws"]] == [
        (d["accrual_id"], d["expires_at"]) for d in draws]
    again = await api.post(f"/v1/loyalty/operations/{spent.json()['operation_id']}/cancel",
                           json={"idempotency_key": "c2"})
    assert again.status_code == 409

    entries = await api.get("/v1/loyalty/entries", params={"id": "c-1"})
    kinds = [e["kind"] for e in entries.json()]
    assert kinds == ["restore", "restore", "write_off", "write_off", "accrual", "accrual",
                     "accrual"]


async def test_percent_of_order_rounds_down_and_refund_restores(api: httpx.AsyncClient) -> None:
    earned = await accrue(api, "p1", percent_of_order="5", order={"id": "o-9", "total": 1999})
    assert earned.json()["amount"] == 99
    await accrue(api, "p2", amount=1000)
    paid = await api.post("/v1/loyalty/write-offs", json={
        "identifier": PHONE, "amount": 500, "order_id": "o-10", "idempotency_key": "pay"})
    assert paid.json()["balance"] == 599
    refund = await api.post("/v1/loyalty/orders/o-10/refund", json={})
    assert refund.status_code == 200 and len(refund.json()) == 1
    assert refund.json()[0]["balance"] == 1099
    assert (await api.post("/v1/loyalty/orders/o-10/refund", json={})).json() == []


async def test_levels_rise_with_qualification_points(api: httpx.AsyncClient,
                                                     any_engine: sa.Engine) -> None:
    levels = (await api.get("/v1/loyalty/levels")).json()
    assert [lv["name"] for lv in levels["levels"]] == ["Basic", "Silver", "Gold"]
    first = await accrue(api, "q1", amount=9_000, account="qualification")
    assert first.json()["level"] == "Basic"
    second = await accrue(api, "q2", amount=1_000, account="qualification")
    assert second.json()["level_changed"] == {"from": "Basic", "to": "Silver"}
    with session_scope(any_engine) as session:  # into the router, where journeys hear it
        event = session.exec(select(Event).where(Event.type == "loyalty.level_changed")).one()
    assert (event.customer_id, event.data["to"]) == ("c-1", "Silver")
    bonus = await api.post("/v1/loyalty/write-offs", json={
        "identifier": PHONE, "amount": 1, "idempotency_key": "q3"})
    assert bonus.status_code == 409  # qualification points are never spendable
    balance = (await api.get("/v1/loyalty/balance", params={"id": "c-1"})).json()
    assert balance["level"] == "Silver" and balance["bonus"]["balance"] == 0


async def test_errors_name_the_problem(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/v1/loyalty/balance", params={"card": "2900000000000"})
    assert unknown.status_code == 404
    missing = await accrue(api, "e1", amount=5, identifier={"type": "id", "value": "nobody"})
    assert missing.status_code == 404
    bad = await accrue(api, "e2", amount=-5)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "$.amount"
    both = await accrue(api, "e3", amount=5, percent_of_order="3",
                        order={"id": "o", "total": 10})
    assert both.status_code == 422
    past = await accrue(api, "e4", amount=5, expires_at=(
        datetime.now(UTC) - timedelta(days=1)).isoformat())
    assert past.status_code == 422 and past.json()["errors"][0]["path"] == "$.expires_at"
    two = await api.get("/v1/loyalty/balance", params={"id": "c-1", "phone": "+79161234567"})
    assert two.status_code == 422


async def test_loyalty_changes_need_the_loyalty_scope(api: httpx.AsyncClient,
                                                      any_engine: sa.Engine) -> None:
    reader = make_key(any_engine, "read")
    writer = make_key(any_engine, "loyalty:write")
    body = {"identifier": PHONE, "amount": 5, "idempotency_key": "s1"}
    denied = await api.post("/v1/loyalty/accruals", json=body, headers={"X-API-Key": reader})
    assert denied.status_code == 403 and "loyalty:write" in denied.json()["detail"]
    allowed = await api.post("/v1/loyalty/accruals", json=body, headers={"X-API-Key": writer})
    assert allowed.status_code == 200


async def test_concurrent_write_offs_one_wins(api: httpx.AsyncClient) -> None:
    await accrue(api, "r0", amount=100)
    answers = await asyncio.gather(*(api.post("/v1/loyalty/write-offs", json={
        "identifier": PHONE, "amount": 100, "idempotency_key": f"r{n}"}) for n in range(1, 9)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    balance = (await api.get("/v1/loyalty/balance", params={"id": "c-1"})).json()
    assert balance["bonus"]["balance"] == 0


async def test_card_link_opens_the_card(api: httpx.AsyncClient, settings: Settings) -> None:
    await accrue(api, "k1", amount=70)
    link = card_link("c-1", settings.loyalty)
    card = await api.get(link.replace("http://127.0.0.1:8000", ""), headers={"X-API-Key": ""})
    assert card.status_code == 200 and card.json()["balance"] == 70
    forged = link[:-3] + "abc"
    assert (await api.get(forged.replace("http://127.0.0.1:8000", ""))).status_code == 404

"""Coupons and gift cards on SQLite and PostgreSQL: unique codes, one redemption wins, life and
limits, revocation; through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.journeys import add_customer
from tropa.errors import LoyaltyRefused
from tropa.loyalty import coupons
from tropa.loyalty.coupons import CouponView, SeriesSpec
from tropa.settings import Settings
from tropa.store.db import session_scope


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    add_customer(any_engine, "c-1", external_id="crm-1")
    async with api_client(app, make_key(any_engine)) as client:
        yield client


async def test_series_issue_redeem_revoke(api: httpx.AsyncClient) -> None:
    series = await api.post("/v1/loyalty/coupon-series", json={
        "id": "spring-10", "prefix": "SPR-", "length": 6, "alphabet": "ABCDEF23",
        "lifetime_seconds": 86400 * 30, "total_limit": 3})
    assert series.status_code == 200, series.text
    same = await api.post("/v1/loyalty/coupon-series", json={
        "id": "spring-10", "prefix": "SPR-", "length": 6, "alphabet": "ABCDEF23",
        "lifetime_seconds": 86400 * 30, "total_limit": 3})
    assert same.status_code == 200
    other = await api.post("/v1/loyalty/coupon-series", json={"id": "spring-10", "length": 9})
    assert other.status_code == 409

    issued = [await api.post("/v1/loyalty/coupons", json={
        "series": "spring-10", "identifier": {"type": "external_id", "value": "crm-1"},
        "idempotency_key": f"i{n}"}) for n in range(3)]
    codes = [i.json()["code"] for i in issued]
    assert len(set(codes)) == 3
    assert all(c.startswith("SPR-") and len(c) == 10 and set(c[4:]) <= set("ABCDEF23")
               for c in codes)
    assert issued[0].json()["state"] == "active" and issued[0].json()["customer_id"] == "c-1"
    repeat = await api.post("/v1/loyalty/coupons", json={"series": "spring-10",
                                                         "idempotency_key": "i0"})
    assert repeat.json()["code"] == codes[0]
    over = await api.post("/v1/loyalty/coupons", json={"series": "spring-10",
                                                       "idempotency_key": "i9"})
    assert over.status_code == 409 and over.json()["reason"] == "series_exhausted"

    used = await api.post(f"/v1/loyalty/coupons/{codes[0]}/redeem", json={"idempotency_key": "r1"})
    assert used.status_code == 200 and used.json()["state"] == "used"
    again = await api.post(f"/v1/loyalty/coupons/{codes[0]}/redeem", json={"idempotency_key": "r2"})
    assert again.status_code == 409 and again.json()["reason"] == "coupon_used"
    same_key = await api.post(f"/v1/loyalty/coupons/{codes[0]}/redeem",
                              json={"idempotency_key": "r1"})
    assert same_key.status_code == 200

    revoked = await api.post(f"/v1/loyalty/coupons/{codes[1]}/revoke")
    assert revoked.json()["state"] == "revoked"
    refused = await api.post(f"/v1/loyalty/coupons/{codes[1]}/redeem",
                             json={"idempotency_key": "r3"})
    assert refused.status_code == 409 and refused.json()["reason"] == "coupon_revoked"
    assert (await api.get("/v1/loyalty/coupons/NOPE-1")).status_code == 404
    assert (await api.post("/v1/loyalty/coupons", json={
        "series": "nope", "idempotency_key": "x"})).status_code == 404


async def test_gift_card_is_spent_in_parts(api: httpx.AsyncClient) -> None:
    await api.post("/v1/loyalty/coupon-series", json={"id": "gift-5000", "kind": "gift_card",
                                                      "value": 500_000, "prefix": "G"})
    card = (await api.post("/v1/loyalty/coupons", json={"series": "gift-5000",
                                                        "idempotency_key": "g"})).json()
    assert card["remainder"] == 500_000
    first = await api.post(f"/v1/loyalty/coupons/{card['code']}/redeem",
                           json={"amount": 300_000, "idempotency_key": "g1"})
    assert first.json()["remainder"] == 200_000 and first.json()["state"] == "active"
    short = await api.post(f"/v1/loyalty/coupons/{card['code']}/redeem",
                           json={"amount": 200_001, "idempotency_key": "g2"})
    assert short.status_code == 409 and short.json()["reason"] == "gift_card_short"
    rest = await api.post(f"/v1/loyalty/coupons/{card['code']}/redeem",
                          json={"amount": 200_000, "idempotency_key": "g3"})
    assert rest.json()["remainder"] == 0 and rest.json()["state"] == "used"
    no_amount = await api.post("/v1/loyalty/coupon-series", json={"id": "gift-x",
                                                                  "kind": "gift_card"})
    assert no_amount.status_code == 422


def test_activation_delay_and_lifetime(any_engine: sa.Engine) -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with session_scope(any_engine) as session:
        coupons.create_series(session, SeriesSpec(id="later", activates_in_seconds=3600,
                                                  lifetime_seconds=86400))
        code = coupons.issue(session, series_id="later", customer_id=None,
                             idempotency_key="k", now=start).code
    with session_scope(any_engine) as session:
        assert coupons.find(session, code, start).state == "pending"
        with pytest.raises(LoyaltyRefused, match="pending"):
            coupons.redeem(session, code=code, idempotency_key="early", now=start)
        assert coupons.find(session, code, start + timedelta(hours=2)).state == "active"
        late = start + timedelta(hours=1, days=1)
        assert coupons.find(session, code, late).state == "expired"
        with pytest.raises(LoyaltyRefused, match="expired"):
            coupons.redeem(session, code=code, idempotency_key="late", now=late)


def test_concurrent_redeems_one_wins(any_engine: sa.Engine) -> None:
    with session_scope(any_engine) as session:
        coupons.create_series(session, SeriesSpec(id="once"))
        code = coupons.issue(session, series_id="once", customer_id=None,
                             idempotency_key="k").code

    def redeem(n: int) -> CouponView | LoyaltyRefused:
        try:
            with session_scope(any_engine) as session:
                return coupons.redeem(session, code=code, idempotency_key=f"r{n}")
        except LoyaltyRefused as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(redeem, range(12)))
    assert sum(isinstance(o, CouponView) for o in outcomes) == 1
    with session_scope(any_engine) as session:
        assert coupons.find(session, code).uses == 1


async def test_concurrent_api_redeems_one_wins(api: httpx.AsyncClient) -> None:
    await api.post("/v1/loyalty/coupon-series", json={"id": "rush"})
    code = (await api.post("/v1/loyalty/coupons", json={"series": "rush",
                                                        "idempotency_key": "k"})).json()["code"]
    answers = await asyncio.gather(*(api.post(f"/v1/loyalty/coupons/{code}/redeem", json={
        "idempotency_key": f"r{n}"}) for n in range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7

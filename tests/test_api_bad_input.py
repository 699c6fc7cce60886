"""Bad input gets a 4xx naming the field: event times at the calendar's ends, zones that are
no place, future birthdays, phones in other digit forms (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from tests.support.journeys import add_customer

EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
         "1899-12-31T23:59:59Z"]


def event(event_id: str, occurred_at: str, customer: str = "b-1") -> dict[str, object]:
    return {"event_id": event_id, "type": "visit", "customer_id": customer,
            "occurred_at": occurred_at, "data": {}}


async def test_event_times_past_the_calendar_are_a_422_naming_the_field(
        api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1/customers/b-1", json={})).status_code == 200
    for moment in EDGES:
        response = await api.post("/v1/events", json=event(f"e-{moment}", moment))
        assert response.status_code == 422, (moment, response.text)
        assert [e["path"] for e in response.json()["errors"]] == ["$.occurred_at"]
        assert "out of range" in response.json()["errors"][0]["message"]


async def test_one_bad_time_in_a_batch_spares_its_neighbours(api: httpx.AsyncClient) -> None:
    name = f"visits-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/journeys", headers={"Content-Type": "application/yaml"},
                             content=f"journey: {name}\ntrigger: {{event: visit}}\n"
                                     "steps:\n  - wait: 1h\n")
    version = created.json()["version"]
    assert (await api.post(f"/v1/journeys/{name}/versions/{version}/publish")).status_code == 200
    for customer in ("b-1", "b-2"):
        assert (await api.put(f"/v1/customers/{customer}", json={})).status_code == 200
    now = datetime.now(UTC).isoformat()
    batch = [event("ok-1", now), event("bad", EDGES[0]), event("ok-2", now, "b-2")]

    response = await api.post("/v1/events:batch", json={"events": batch})

    assert response.status_code == 202, response.text
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["accepted", "rejected", "accepted"]
    assert items[1]["errors"][0]["path"] == "$.events[1].occurred_at"
    assert items[1]["reason"].startswith("$.events[1].occurred_at: ")
    assert items[0]["started"] == [f"journey/{name}/b-1"]
    assert items[2]["started"] == [f"journey/{name}/b-2"]


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "right/UTC",
                                  "posix/Europe/Moscow", "EST5EDT", "Etc/GMT+3", "Europe/Nowhere",
                                  "../../etc/passwd"])
async def test_time_zones_that_are_no_region_are_refused(api: httpx.AsyncClient,
                                                         zone: str) -> None:
    put = await api.put("/v1/customers/z-1", json={"time_zone": zone})
    patch_base = await api.put("/v1/customers/z-2", json={"time_zone": "Asia/Yekaterinburg"})
    patched = await api.patch("/v1/customers/z-2", json={"time_zone": zone})

    assert put.status_code == patched.status_code == 422, put.text
    assert put.json()["errors"][0]["path"] == "$.time_zone"
    assert "Europe/Moscow" in put.json()["errors"][0]["message"]
    assert patch_base.status_code == 200
    assert (await api.get("/v1/customers/z-2")).json()["time_zone"] == "Asia/Yekaterinburg"


async def test_real_regions_and_utc_are_taken(api: httpx.AsyncClient) -> None:
    for zone in ("UTC", "Europe/Moscow", "America/Argentina/Buenos_Aires", "Asia/Kolkata"):
        put = await api.put("/v1/customers/z-3", json={"time_zone": zone})
        assert put.status_code == 200, (zone, put.text)


async def test_birthdays_in_the_future_are_refused(api: httpx.AsyncClient) -> None:
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    put = await api.put("/v1/customers/d-1", json={"birthday": future})
    bulk = await api.post("/v1/customers:bulk", json={"customers": [
        {"id": "d-2", "birthday": future}, {"id": "d-3", "birthday": "1990-05-17"}]})
    assert (await api.put("/v1/customers/d-4", json={})).status_code == 200
    patched = await api.patch("/v1/customers/d-4", json={"birthday": future})

    assert put.status_code == patched.status_code == 422
    assert put.json()["errors"][0]["path"] == "$.birthday"
    assert "future" in put.json()["errors"][0]["message"]
    assert [i["status"] for i in bulk.json()["items"]] == ["rejected", "created"]
    assert bulk.json()["items"][0]["errors"][0]["path"] == "$.customers[0].birthday"


def digits(text: str, zero: int) -> str:
    """`text` with its ASCII digits written from another script's zero."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULLWIDTH = 0x0660, 0x06F0, 0xFF10


@pytest.mark.parametrize("written", [digits("+79161234567", ARABIC_INDIC),
                                     digits("8 916 123 45 67", EXTENDED_ARABIC_INDIC),
                                     digits("89161234567", FULLWIDTH)])
async def test_phone_lookups_normalise_as_writes_do(api: httpx.AsyncClient, written: str) -> None:
    put = await api.put("/v1/customers/p-1", json={"phone": written})
    assert put.status_code == 200, put.text
    assert put.json()["phone"] == "+79161234567"

    found = await api.get("/v1/customers", params={"phone": written})
    nonsense = await api.get("/v1/customers", params={"phone": "call me"})

    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()] == ["p-1"]
    assert nonsense.status_code == 422
    assert nonsense.json()["errors"][0]["path"] == "query.phone"


async def test_customers_stored_before_these_checks_are_still_shown(
        api: httpx.AsyncClient, any_engine: sa.Engine) -> None:
    future = datetime.now(UTC).date() + timedelta(days=30)
    add_customer(any_engine, "old-1", time_zone="localtime", birthday=future)

    shown = await api.get("/v1/customers/old-1")
    patched = await api.patch("/v1/customers/old-1", json={"time_zone": "Europe/Samara"})

    assert shown.status_code == 200, shown.text
    assert shown.json()["time_zone"] == "localtime"
    assert patched.status_code == 200
    assert patched.json()["time_zone"] == "Europe/Samara"

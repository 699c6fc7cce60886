"""The RF segments API on SQLite and PostgreSQL: a purchase moves its customer at once, the
customer card shows the segment and every move, sizes and members page, configurations are
previewed and applied, and a bad configuration names its line and column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx


def _order(customer: str, days_ago: int) -> dict[str, object]:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return {"customer": {"type": "id", "value": customer}, "placed_at": at.isoformat(),
            "status": "placed", "currency": "RUB", "total": 150_000,
            "items": [{"sku": "A-1", "name": "Tea", "quantity": 1, "price": 150_000}]}


async def test_purchases_move_the_customer_and_the_card_shows_every_move(
        api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1/customers/c-1", json={"first_name": "Olga"})).status_code in (
        200, 201)
    none_yet = (await api.get("/v1/customers/c-1/segment")).json()
    assert (none_yet["segment"], none_yet["history"]) == (None, [])

    assert (await api.put("/v1/orders/o-1", json=_order("c-1", 2))).status_code in (200, 201)
    assert (await api.get("/v1/customers/c-1/segment")).json()["segment"] == "new"
    assert (await api.put("/v1/orders/o-2", json=_order("c-1", 1))).status_code in (200, 201)
    # The same order again changes nothing and moves nobody.
    assert (await api.put("/v1/orders/o-2", json=_order("c-1", 1))).status_code == 200

    card = (await api.get("/v1/customers/c-1/segment")).json()
    assert card["segment"] == "promising"
    assert [(m["from"], m["to"], m["cause"]) for m in card["history"]] == [
        (None, "new", "purchase"), ("new", "promising", "purchase")]

    sizes = {s["segment"]: s["customers"] for s in (await api.get("/v1/segments")).json()}
    assert sizes["promising"] == 1 and sum(sizes.values()) == 1 and len(sizes) == 7
    members = (await api.get("/v1/segments/promising/customers")).json()
    assert [m["customer_id"] for m in members["customers"]] == ["c-1"]
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    matrix = (await api.get("/v1/segments:moves", params={"from": start, "to": end})).json()
    assert sorted((m["from"] or "", m["to"], m["customers"]) for m in matrix) == [
        ("", "new", 1), ("new", "promising", 1)]
    assert (await api.get("/v1/segments/regulars/customers")).status_code == 404


async def test_config_is_previewed_then_applied_and_bad_config_names_the_place(
        api: httpx.AsyncClient) -> None:
    await api.put("/v1/customers/c-2", json={})
    await api.put("/v1/orders/o-9", json=_order("c-2", 10))
    current = (await api.get("/v1/segments/config")).json()
    assert current["applied_at"] is None and "window_days: 365" in current["source_yaml"]
    # A stricter "recent" band: a purchase 10 days old is no longer recent.
    stricter = current["source_yaml"].replace("{band: recent, max_days: 30}",
                                              "{band: recent, max_days: 7}")
    headers = {"Content-Type": "application/yaml"}
    preview = await api.post("/v1/segments/config:preview", content=stricter, headers=headers)
    assert preview.json() == [{"from": "new", "to": "wandering", "customers": 1}]
    assert (await api.get("/v1/customers/c-2/segment")).json()["segment"] == "new"

    applied = await api.put("/v1/segments/config", content=stricter, headers=headers)
    assert applied.json() == {"moved": 1, "events": 2}
    card = (await api.get("/v1/customers/c-2/segment")).json()
    assert (card["segment"], card["history"][-1]["cause"]) == ("wandering", "config")

    broken = stricter.replace("often: loyal}", "often: regulars}")
    refused = await api.put("/v1/segments/config", content=broken, headers=headers)
    assert refused.status_code == 422
    problem = refused.json()["problems"][0]
    assert problem["message"] == "`regulars` is not a segment" and problem["line"] == 21

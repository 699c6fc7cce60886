"""Customers through the API on SQLite and PostgreSQL: upsert, find, consents, tags, bulk."""

from __future__ import annotations

import httpx


async def test_upsert_normalises_and_finds_by_any_contact(api: httpx.AsyncClient) -> None:
    put = await api.put("/v1/customers/c-1", json={
        "external_id": "crm-1", "first_name": "Olga", "phone": "8 (916) 765-43-21",
        "email": "Olga@Example.COM", "time_zone": "Europe/Moscow"})
    assert put.status_code == 200, put.text
    assert put.json()["phone"] == "+79167654321"

    for query in ({"phone": "+7 916 765 43 21"}, {"phone": "89167654321"},
                  {"email": "Olga@example.com"}, {"external_id": "crm-1"}):
        found = await api.get("/v1/customers", params=query)
        assert found.status_code == 200, found.text
        assert [c["id"] for c in found.json()] == ["c-1"], query
    assert (await api.get("/v1/customers", params={"phone": "+79160000000"})).json() == []

    patched = await api.patch("/v1/customers/c-1", json={"last_name": "Ivanova"})
    assert (patched.json()["first_name"], patched.json()["last_name"]) == ("Olga", "Ivanova")
    missing = await api.get("/v1/customers/nobody")
    assert missing.status_code == 404
    assert "'nobody'" in missing.json()["detail"]


async def test_consents_tags_and_attributes(api: httpx.AsyncClient) -> None:
    await api.put("/v1/customers/c-2", json={"consents": {"marketing": {"sms": True}},
                                            "tags": ["vip"], "attributes": {"tier": "gold"}})
    consent = await api.put("/v1/customers/c-2/consents/marketing/email",
                            json={"granted": True})
    withdrawn = await api.put("/v1/customers/c-2/consents/marketing/sms",
                              json={"granted": False})
    assert consent.status_code == withdrawn.status_code == 200
    assert withdrawn.json()["consents"] == {"marketing": {"sms": False, "email": True}}

    tags = await api.post("/v1/customers/c-2/tags", json={"add": ["new", "vip"],
                                                         "remove": ["old"]})
    assert tags.json()["tags"] == ["vip", "new"]
    tags = await api.post("/v1/customers/c-2/tags", json={"remove": ["vip"]})
    assert tags.json()["tags"] == ["new"]

    attrs = await api.patch("/v1/customers/c-2/attributes", json={"city": "Kazan", "tier": None})
    assert attrs.json()["attributes"] == {"city": "Kazan"}
    stored = (await api.get("/v1/customers/c-2")).json()
    assert (stored["tags"], stored["attributes"]) == (["new"], {"city": "Kazan"})
    bad = await api.put("/v1/customers/c-2/consents/ads/sms", json={"granted": True})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "path.category"
    gone = await api.post("/v1/customers/nobody/tags", json={"add": ["x"]})
    assert gone.status_code == 404


async def test_invalid_fields_come_back_with_their_json_path(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/customers/c-3", json={
        "phone": "12", "time_zone": "Mars/Olympus", "consents": {"marketing": {"SMS!": True}},
        "tags": [""], "birthday": "not a date"})
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"$.time_zone", "$.tags[0]", "$.birthday"} <= paths
    assert any(p.startswith("$.consents.marketing") for p in paths)

    phone = await api.put("/v1/customers/c-3", json={"phone": "12"})
    assert phone.status_code == 422
    assert phone.json()["errors"][0]["path"] == "$.phone"
    nul = await api.put("/v1/customers/c-3", json={"first_name": "a\u0000b"})
    assert nul.json()["errors"][0]["path"] == "$.first_name"
    no_filter = await api.get("/v1/customers")
    assert no_filter.status_code == 422


async def test_external_id_belongs_to_one_customer(api: httpx.AsyncClient) -> None:
    await api.put("/v1/customers/c-4", json={"external_id": "crm-4"})
    clash = await api.put("/v1/customers/c-5", json={"external_id": "crm-4"})
    assert clash.status_code == 409
    assert "'c-4'" in clash.json()["detail"]
    assert (await api.put("/v1/customers/c-4", json={"external_id": "crm-4"})).status_code == 200


async def test_bulk_upsert_reports_each_customer(api: httpx.AsyncClient) -> None:
    await api.put("/v1/customers/b-0", json={"external_id": "x-0"})
    response = await api.post("/v1/customers:bulk", json={"customers": [
        {"id": "b-1", "phone": "+7 916 111-22-33"},
        {"id": "b-0", "first_name": "Again", "external_id": "x-0"},
        {"id": "b-2", "phone": "not a phone"},
        {"id": "b-3", "time_zone": 7},
        "not an object",
        {"id": "b-4", "external_id": "x-0"},
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(i["id"], i["status"]) for i in body["items"]] == [
        ("b-1", "created"), ("b-0", "updated"), ("b-2", "rejected"), ("b-3", "rejected"),
        ("", "rejected"), ("b-4", "rejected")]
    assert (body["created"], body["updated"], body["rejected"]) == (1, 1, 4)
    assert body["items"][2]["errors"][0]["path"] == "$.customers[2].phone"
    assert body["items"][3]["errors"][0]["path"] == "$.customers[3].time_zone"
    assert "'b-0'" in body["items"][5]["reason"]
    assert (await api.get("/v1/customers/b-1")).json()["phone"] == "+79161112233"
    assert (await api.get("/v1/customers/b-0")).json()["first_name"] == "Again"

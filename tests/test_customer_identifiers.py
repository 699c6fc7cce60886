"""Customers found by any identifier; every identifier unique across customers (SQLite, PG)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tropa.customers.identifiers import (
    CustomerNotFound,
    Identifier,
    IdentifierTaken,
    check_card_free,
    resolve,
)
from tropa.services import customers as service
from tropa.store.customer_models import Card
from tropa.store.db import session_scope


def test_resolve_by_every_identifier(any_engine: sa.Engine) -> None:
    with session_scope(any_engine) as session:
        service.upsert(session, customer_id="c-1", data={
            "external_id": "crm-1", "phone": "8 (916) 765-43-21", "email": "Olga@Example.COM"})
        session.add(Card(customer_id="c-1", barcode="2900001234567", track=";2900001234567=1?"))
    with session_scope(any_engine) as session:
        for kind, value in (("id", "c-1"), ("external_id", "crm-1"), ("phone", "+7 916 765 43 21"),
                            ("phone", "89167654321"), ("email", "Olga@example.com"),
                            ("card", "2900001234567"), ("card", ";2900001234567=1?")):
            assert resolve(session, Identifier(type=kind, value=value)).id == "c-1", (kind, value)
        with pytest.raises(CustomerNotFound, match="'nobody'"):
            resolve(session, Identifier(type="id", value="nobody"))
        with pytest.raises(IdentifierTaken, match="'c-1'"):
            check_card_free(session, "2900001234567", None)


async def test_lookup_by_any_identifier_and_409_naming_the_owner(api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1/customers/c-1", json={
        "external_id": "crm-1", "phone": "+49 30 901820", "email": "anna@example.de",
        "registered_at": "2019-03-01"})).status_code == 200
    card = await api.put("/v1/customers/c-1/cards/2900001234567",
                         json={"track": ";2900001234567=2512?",
                               "issued_at": "2019-03-01T10:00:00+03:00"})
    assert card.status_code == 200, card.text
    assert card.json()["status"] == "active"

    for query in ({"phone": "+49 (30) 901820"}, {"phone": "+4930901820"},
                  {"email": "anna@example.de"}, {"card": "2900001234567"},
                  {"card": ";2900001234567=2512?"}, {"external_id": "crm-1"}):
        found = await api.get("/v1/customers:lookup", params=query)
        assert found.status_code == 200, (query, found.text)
        assert found.json()["id"] == "c-1"
    assert found.json()["registered_at"] == "2019-03-01"
    missing = await api.get("/v1/customers:lookup", params={"card": "999"})
    assert missing.status_code == 404
    two = await api.get("/v1/customers:lookup", params={"card": "1", "phone": "2"})
    assert two.status_code == 422

    # Russian, Kazakh and British numbers in their usual national forms.
    for cid, phone in (("c-2", "8 916 123-45-67"), ("c-3", "+7 701 123 4567"),
                       ("c-4", "+44 20 7946 0958")):
        assert (await api.put(f"/v1/customers/{cid}", json={"phone": phone})).status_code == 200
    clashes = [
        await api.put("/v1/customers/c-5", json={"phone": "+7 (916) 123 45 67"}),
        await api.put("/v1/customers/c-5", json={"email": "anna@example.de"}),
        await api.put("/v1/customers/c-5", json={"external_id": "crm-1"}),
    ]
    assert [r.status_code for r in clashes] == [409, 409, 409]
    assert "'c-2'" in clashes[0].json()["detail"] and "'c-1'" in clashes[1].json()["detail"]
    assert (await api.put("/v1/customers/c-5", json={})).status_code == 200
    stolen = await api.put("/v1/customers/c-5/cards/2900001234567", json={})
    assert stolen.status_code == 409 and "'c-1'" in stolen.json()["detail"]
    track = await api.put("/v1/customers/c-5/cards/2900000000001",
                          json={"track": ";2900001234567=2512?"})
    assert track.status_code == 409 and "'c-1'" in track.json()["detail"]
    blocked = await api.put("/v1/customers/c-1/cards/2900001234567",
                            json={"track": ";2900001234567=2512?", "status": "blocked"})
    assert blocked.json()["status"] == "blocked"
    listed = await api.get("/v1/customers/c-1/cards")
    assert [c["barcode"] for c in listed.json()] == ["2900001234567"]


async def test_composite_attributes_name_the_bad_path(api: httpx.AsyncClient) -> None:
    children = [{"name": "Masha", "birth_date": "17.05.2015", "gender": "f"},
                {"name": "Petya", "birth_date": "2018-02-30", "gender": "m"}]
    bad = await api.put("/v1/customers/c-1", json={"attributes": {"children": children}})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["path"] == "$.attributes.children[1].birth_date"
    children[1]["birth_date"] = "2018-02-28"
    good = await api.put("/v1/customers/c-1", json={"attributes": {
        "children": children, "cars": [{"model": "Lada", "bought_date": "01.02.2020"}]}})
    assert good.status_code == 200, good.text
    attrs = good.json()["attributes"]
    assert [c["birth_date"] for c in attrs["children"]] == ["2015-05-17", "2018-02-28"]
    assert attrs["cars"][0]["bought_date"] == "2020-02-01"
    patched = await api.patch("/v1/customers/c-1/attributes", json={"wedding_date": "soon"})
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["path"] == "$.attributes.wedding_date"


async def test_tags_are_a_resource_and_customers_keep_names(api: httpx.AsyncClient) -> None:
    put = await api.put("/v1/tags/vip", json={"colour": "#ff8800", "description": "Top 1%"})
    assert put.status_code == 200, put.text
    assert (await api.put("/v1/tags/vip", json={"colour": "orange"})).status_code == 422
    await api.put("/v1/customers/c-1", json={"tags": ["vip"]})
    assert (await api.get("/v1/customers/c-1")).json()["tags"] == ["vip"]
    listed = await api.get("/v1/tags")
    assert [(t["name"], t["colour"]) for t in listed.json()] == [("vip", "#ff8800")]
    assert (await api.delete("/v1/tags/vip")).status_code == 204
    assert (await api.get("/v1/tags/vip")).status_code == 404

"""The audiences API on SQLite and PostgreSQL: save a filter by name, replace it, list, get,
preview its count and a sample of ids, delete it; a bad filter names its line and column."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from tests.support.api import api_client, make_key

YAML = {"Content-Type": "application/yaml"}
LOYAL_VIPS = """description: VIPs in Moscow
filter:
  all:
    - tag: vip
    - field: attributes.city
      eq: Moscow
"""


async def _customers(api: httpx.AsyncClient) -> None:
    for cid, tags, city in (("c-1", ["vip"], "Moscow"), ("c-2", ["vip"], "Kazan"),
                            ("c-3", [], "Moscow"), ("c-4", ["vip"], "Moscow")):
        answer = await api.put(f"/v1/customers/{cid}",
                               json={"tags": tags, "attributes": {"city": city}})
        assert answer.status_code in (200, 201), answer.text


async def test_save_list_get_preview_replace_delete(api: httpx.AsyncClient) -> None:
    await _customers(api)
    created = await api.put("/v1/audiences/moscow-vips", content=LOYAL_VIPS, headers=YAML)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["description"], body["source"]) == (
        "moscow-vips", "VIPs in Moscow", LOYAL_VIPS)
    assert body["filter"] == {"all": [{"tag": "vip"},
                                      {"field": "attributes.city", "eq": "Moscow"}]}

    preview = (await api.get("/v1/audiences/moscow-vips/preview")).json()
    assert (preview["count"], preview["sample"]) == (2, ["c-1", "c-4"])
    assert [a["name"] for a in (await api.get("/v1/audiences")).json()] == ["moscow-vips"]
    assert (await api.get("/v1/audiences/moscow-vips")).json()["filter"] == body["filter"]

    # JSON works as well as YAML, and a second PUT replaces (200)
    replaced = await api.put("/v1/audiences/moscow-vips", json={"filter": {"tag": "vip"}})
    assert replaced.status_code == 200 and replaced.json()["description"] == ""
    assert (await api.get("/v1/audiences/moscow-vips/preview")).json()["count"] == 3

    adhoc = await api.post("/v1/audiences:preview", json={"filter": {"not": {"tag": "vip"}}})
    assert (adhoc.status_code, adhoc.json()["count"], adhoc.json()["sample"]) == (
        200, 1, ["c-3"])

    assert (await api.delete("/v1/audiences/moscow-vips")).status_code == 204
    gone = await api.get("/v1/audiences/moscow-vips")
    assert gone.status_code == 404 and "PUT /v1/audiences/{name}" in gone.json()["detail"]
    assert (await api.delete("/v1/audiences/moscow-vips")).status_code == 404
    assert (await api.get("/v1/audiences/moscow-vips/preview")).status_code == 404


async def test_a_bad_filter_is_422_with_line_and_column(api: httpx.AsyncClient) -> None:
    text = "filter:\n  all:\n    - tag: vip\n    - field: attributes.city\n      equals: x\n"
    answer = await api.put("/v1/audiences/bad", content=text, headers=YAML)
    assert answer.status_code == 422
    problem = answer.json()["problems"][0]
    assert (problem["line"], problem["column"], problem["path"]) == (
        5, 7, "filter.all[1].equals")
    assert "unknown operator `equals`" in problem["message"]
    assert "did you mean `eq`?" in problem["hint"]
    assert (await api.get("/v1/audiences/bad")).status_code == 404  # nothing was saved

    # JSON bodies are placed by line and column too
    json_text = '{"filter": {"segment": "champions"}}'
    answer = await api.post("/v1/audiences:preview", content=json_text,
                            headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    problem = answer.json()["problems"][0]
    assert (problem["line"], problem["column"]) == (1, 24)  # the opening quote
    assert "unknown segment `champions`" in problem["message"]

    missing = await api.put("/v1/audiences/empty", json={"description": "x"})
    assert missing.status_code == 422
    assert "missing required field `filter`" in missing.json()["problems"][0]["message"]
    bad_name = await api.put("/v1/audiences/Not%20A%20Name", json={"filter": {"all": []}})
    assert bad_name.status_code == 422


async def test_scopes(api: httpx.AsyncClient, any_engine: sa.Engine) -> None:
    app = api._transport.app  # type: ignore[attr-defined]
    async with api_client(app, make_key(any_engine, "read")) as reader:
        refused = await reader.put("/v1/audiences/x", json={"filter": {"all": []}})
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        assert (await reader.get("/v1/audiences")).status_code == 200
        allowed = await reader.post("/v1/audiences:preview", json={"filter": {"all": []}})
        assert allowed.status_code == 200
    async with api_client(app, "") as anonymous:
        assert (await anonymous.get("/v1/audiences")).status_code == 401

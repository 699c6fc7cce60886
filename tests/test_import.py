"""Importing customers and orders from CSV and XLSX: every kind of bad row in the report,
dry runs write nothing, a re-run changes nothing, the API job, export (SQLite, PostgreSQL)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from tests.support.waiting import eventually
from tropa.customers.exporting import export
from tropa.customers.imports.job import import_customers, new_job
from tropa.customers.imports.orders import import_orders
from tropa.customers.tabular import Mapping
from tropa.services import customers as service
from tropa.store.db import session_scope

HEADER = "id,first_name,phone,email,birthday,card,shoe_size\n"
ROWS = [
    "c-1,Olga,+7 916 765-43-21,olga@example.com,17.05.1990,2900000000011,38",
    "c-2,Ivan,12,ivan@example.com,1990-05-17,,41",              # bad phone
    "c-3,Petr,+7 916 111-22-33,petr@example.com,30.02.1990,,",  # bad date
    "c-4,Anna,8 (916) 765-43-21,,,,",                           # phone of row 2
    "c-5,@NAME@,,,,2900000000022,",                             # not UTF-8
    "c-6,Oleg,,oleg@example.com,1985-01-01,2900000000011,",     # card of row 2
    "c-7,Vera,+7 916 999-00-00,,,,",                            # phone of customer `old`
    "c-8,Lev,,lev@example.com,1999-12-31,,",
]
REPORT = [
    ["row", "column", "value", "reason", "fix"],
    ["1", "shoe_size", "shoe_size", "unknown column; its values are not imported",
     "rename it to a field name (id, external_id, first_name, last_name, phone, email, "
     "birthday, registered_at, time_zone, locale, tags, card, card_track, attributes.<name>, "
     "consents.<category>.<channel>) or map it with --mapping"],
    ["3", "phone", "12", "not a phone number (not a valid phone number for its country)",
     "write it with the country code, e.g. +7 916 123-45-67"],
    ["4", "birthday", "30.02.1990", "'30.02.1990' is not a date",
     "write the date as 1990-05-17 or 17.05.1990"],
    ["5", "phone", "+79167654321", "phone already given in row 2", "keep one row per customer"],
    ["6", "first_name", "\\xc8\\xe2\\xe0\\xed", "not UTF-8 text",
     "save the file as UTF-8 (CSV UTF-8 in Excel), or give `encoding: cp1251` in the "
     "mapping file"],
    ["7", "card", "2900000000011", "card already given in row 2", "keep one row per customer"],
    ["8", "phone", "+79169990000", "phone belongs to customer 'old'",
     "fix the value, or merge the two customers before importing"],
]


def write_csv(path: Path) -> Path:
    text = HEADER + "\n".join(ROWS) + "\n"
    head, tail = text.encode().split(b"@NAME@")
    path.write_bytes(head + "Иван".encode("cp1251") + tail)
    return path


def snapshot(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT id, phone, email, birthday, updated_at FROM customers ORDER BY id"))] + \
            [tuple(r) for r in conn.execute(sa.text(
                "SELECT barcode, customer_id FROM cards ORDER BY barcode"))] + \
            [(n,) for n in conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalars()]


@pytest.mark.parametrize("parallel", [False, True], ids=["checked-here", "checker-process"])
def test_every_kind_of_bad_row_is_reported_and_reruns_change_nothing(
        any_engine: sa.Engine, tmp_path: Path, parallel: bool) -> None:
    with session_scope(any_engine) as session:
        service.upsert(session, customer_id="old", data={"phone": "+79169990000"})
    source = write_csv(tmp_path / "base.csv")

    dry = import_customers(any_engine, source, dry_run=True, parallel=parallel,
                           job_id=new_job(any_engine, "customers", "base.csv", dry_run=True))
    assert (dry.rows, dry.imported, dry.rejected) == (8, 2, 6)
    assert [r[0] for r in snapshot(any_engine)[:-1]] == ["old"]  # nothing written

    first = import_customers(any_engine, source, parallel=parallel,
                             job_id=new_job(any_engine, "customers", "base.csv", dry_run=False))
    assert (first.imported, first.unchanged, first.rejected) == (2, 0, 6)
    assert first.report == tmp_path / "base.rejected.csv"
    with first.report.open(encoding="utf-8", newline="") as f:
        assert list(csv.reader(f)) == REPORT
    with session_scope(any_engine) as session:
        olga = service.get(session, customer_id="c-1")
        assert (olga.phone, olga.email, olga.birthday.isoformat() if olga.birthday else None) \
            == ("+79167654321", "olga@example.com", "1990-05-17")
    before = snapshot(any_engine)
    again = import_customers(any_engine, source, parallel=parallel,
                             job_id=new_job(any_engine, "customers", "base.csv", dry_run=False))
    assert (again.imported, again.unchanged, again.rejected) == (0, 2, 6)
    assert snapshot(any_engine) == before


def test_xlsx_formula_cells_mapping_and_orders(any_engine: sa.Engine, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Код", "Имя", "Телефон", "Дата рождения", "Размер"])
    sheet.append(["k-1", "Olga", "+79161234567", "17.05.1990", 38])
    sheet.append(["k-2", "=B2&\"!\"", "+79161234568", "1991-01-01", 40])
    sheet.append(["k-3", "Ivan", 79161234569, None, None])
    book.save(tmp_path / "base.xlsx")
    (tmp_path / "map.yaml").write_text("columns:\n  Код: id\n  Имя: first_name\n"
                                       "  Телефон: phone\n  Дата рождения: birthday\n"
                                       "  Размер: attributes.shoe_size\n", encoding="utf-8")
    result = import_customers(any_engine, tmp_path / "base.xlsx",
                              mapping=Mapping.load(tmp_path / "map.yaml"),
                              job_id=new_job(any_engine, "customers", "x", dry_run=False))
    assert (result.imported, result.rejected) == (2, 1)
    assert result.report is not None
    with result.report.open(encoding="utf-8", newline="") as f:
        assert list(csv.reader(f))[1][:4] == ["3", "Имя", "", "the cell holds a formula"]
    with session_scope(any_engine) as session:
        ivan = service.get(session, customer_id="k-3")
        assert (ivan.phone, ivan.attributes) == ("+79161234569", {})
        assert service.get(session, customer_id="k-1").attributes == {"shoe_size": "38"}

    (tmp_path / "orders.csv").write_text(
        "order_id,phone,placed_at,status,total,currency\n"
        "o-1,+79161234567,2024-05-17T10:00:00+03:00,paid,150000,RUB\n"
        "o-2,+79161234569,17.06.2024,paid,2500,RUB\n"
        "o-1,+79161234567,2024-05-17T10:00:00+03:00,paid,150000,RUB\n"
        "o-3,+79160000000,2024-05-17,paid,100,RUB\n"
        "o-4,+79161234567,2024-05-18,paid,1.5,RUB\n", encoding="utf-8")
    for expected in ((2, 0, 3), (0, 2, 3)):
        orders = import_orders(any_engine, tmp_path / "orders.csv",
                               job_id=new_job(any_engine, "orders", "o", dry_run=False))
        assert (orders.imported, orders.unchanged, orders.rejected) == expected
    with any_engine.connect() as conn:
        totals = conn.execute(sa.text("SELECT customer_id, orders_count, total_spent FROM "
                                      "purchase_stats ORDER BY customer_id")).all()
    assert [tuple(t) for t in totals] == [("k-1", 1, 150000), ("k-3", 1, 2500)]

    export(any_engine, tmp_path / "out.xlsx")
    rows = list(load_workbook(tmp_path / "out.xlsx", read_only=True).active.iter_rows(  # type: ignore[union-attr]
        values_only=True))
    assert [r[0] for r in rows] == ["id", "k-1", "k-3"]


async def test_import_job_through_the_api(api: httpx.AsyncClient, tmp_path: Path) -> None:
    started = await api.post("/v1/imports", params={"filename": "base.csv"},
                             content=write_csv(tmp_path / "base.csv").read_bytes(),
                             headers={"Content-Type": "text/csv"})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    async def finished() -> dict[str, object] | None:
        job = (await api.get(f"/v1/imports/{job_id}")).json()
        return job if job["status"] in ("done", "failed") else None

    job = await eventually(finished, timeout=30, message="import finished")
    assert (job["status"], job["imported"], job["rejected"]) == ("done", 3, 5)
    report = await api.get(f"/v1/imports/{job_id}/report")
    assert next(csv.reader(io.StringIO(report.text))) == REPORT[0]
    exported = await api.get("/v1/customers:export", params={"format": "csv"})
    assert [r[0] for r in csv.reader(io.StringIO(exported.text))] == ["id", "c-1", "c-7", "c-8"]
    assert (await api.get("/v1/imports/nope")).status_code == 404


def test_a_writer_racing_the_import_costs_one_row_not_the_batch(any_engine: sa.Engine) -> None:
    from tropa.customers.audit import Actor
    from tropa.customers.imports.customers import CustomerImport
    from tropa.customers.imports.rows import Row

    importer = CustomerImport(any_engine, Actor("cli"), dry_run=False)
    importer._existing = lambda _conn, _ids: {}  # type: ignore[method-assign]  # blind to x-1
    with session_scope(any_engine) as session:
        service.upsert(session, customer_id="x-1", data={"first_name": "Api"})
    result = importer.run([Row(number=2, id="x-1", fields={"first_name": "File"}),
                           Row(number=3, id="x-2", fields={"first_name": "New"})])
    with session_scope(any_engine) as session:
        assert service.get(session, customer_id="x-2").first_name == "New"
        first = service.get(session, customer_id="x-1").first_name
    if any_engine.dialect.name == "postgresql":  # COPY meets the row: that row is reported
        assert (result.imported, [p.row for p in result.problems], first) == (1, [2], "Api")
    else:  # SQLite upserts by id
        assert (result.imported, result.problems, first) == (2, [], "File")

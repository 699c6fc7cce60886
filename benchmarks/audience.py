"""Audience benchmark: count and page typical filters over a large base on PostgreSQL.

Run:  .venv/bin/python -m benchmarks.audience [--customers 1000000] [--page 1000]

It creates a database of its own on the local PostgreSQL (dropped at the end), migrates it,
and loads customers with a birthday, a city, tags, an email consent for half of them, an RF
segment and purchase totals for two thirds. Then, for each filter below, it prints the
audience size, the seconds of one `count` (the preview), of the first page and of walking the
whole audience in pages of `--page` ids (what a schedule fire or a broadcast does).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from benchmarks._database import throwaway_database
from tropa.audiences import count, page_customer_ids, parse_audience
from tropa.store.db import make_engine, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FILTERS: dict[str, Any] = {
    "birthday in May": {"field": "birthday", "month": 5},
    "loyal with email consent": {"all": [{"segment": "loyal"}, {"consent": "email"}]},
    "Moscow VIPs": {"all": [{"tag": "vip"}, {"field": "attributes.city", "eq": "Moscow"}]},
    "no purchase for 90 days": {"last_purchase": {"older_than": "90d"}},
    "two purchases, no staff": {"all": [{"purchases": {"count": {"gte": 2}}},
                                        {"not": {"tag": "staff"}}]},
}


def _seed(engine: sa.Engine, customers: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (id, phone_verified, email_verified, time_zone, locale, "
            "birthday, consents, tags, attributes, created_at, updated_at) "
            "SELECT 'c' || lpad(i::text, 8, '0'), false, false, 'Europe/Moscow', 'ru', "
            "date '1950-01-01' + (random() * 20000)::int, "
            "CASE WHEN i % 2 = 0 THEN '{\"marketing\": {\"email\": true}}' ELSE '{}' END::json, "
            "CASE WHEN i % 10 = 0 THEN '[\"vip\"]' WHEN i % 97 = 0 THEN '[\"staff\"]' "
            "ELSE '[]' END::json, "
            "json_build_object('city', (ARRAY['Moscow', 'Kazan', 'Omsk'])[1 + i % 3]), "
            ":now, :now FROM generate_series(1, :n) AS i"), {"n": customers, "now": now})
        conn.execute(sa.text(
            "INSERT INTO customer_dates (customer_id, path, item, time_zone, month_day, value) "
            "SELECT id, 'customer.birthday', 0, time_zone, to_char(birthday, 'MM-DD'), birthday "
            "FROM customers"))
        conn.execute(sa.text(
            "INSERT INTO customer_segments (customer_id, segment, since) "
            "SELECT id, (ARRAY['new', 'loyal', 'at_risk', 'lost'])[1 + (random() * 3)::int], "
            ":now FROM customers WHERE random() < 0.66"), {"now": now})
        conn.execute(sa.text(
            "INSERT INTO purchase_stats (customer_id, currency, orders_count, total_spent, "
            "first_purchase_at, last_purchase_at) SELECT customer_id, 'RUB', "
            "1 + (random() * 5)::int, 100000, :now - interval '400 days', "
            ":now - random() * interval '365 days' FROM customer_segments"), {"now": now})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def _measure(engine: sa.Engine, name: str, spec: Any, now: datetime, page: int) -> None:
    audience = parse_audience(spec)
    began = time.perf_counter()
    size = count(engine, audience, now=now)
    counted = time.perf_counter() - began
    began = time.perf_counter()
    ids = page_customer_ids(engine, audience, now=now, after_id=None, limit=page)
    first = time.perf_counter() - began
    began = time.perf_counter()
    walked = 0
    after = None
    while True:
        ids = page_customer_ids(engine, audience, now=now, after_id=after, limit=page)
        walked += len(ids)
        if len(ids) < page:
            break
        after = ids[-1]
    whole = time.perf_counter() - began
    print(f"  {name:28s} {size:9d} customers  count {counted:.3f} s  first page "
          f"{first:.3f} s  all pages {whole:.2f} s ({walked / whole:,.0f} ids/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--admin-url", default=ADMIN)
    args = parser.parse_args()
    with throwaway_database(args.admin_url, "tropa_bench_audience") as (_, url):
        migrate(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        began = time.perf_counter()
        _seed(engine, args.customers, now)
        print(f"seeded {args.customers} customers in {time.perf_counter() - began:.1f} s")
        for label, spec in FILTERS.items():
            _measure(engine, label, spec, now, args.page)
        engine.dispose()


if __name__ == "__main__":
    main()

"""RF benchmark: segments of a large base on PostgreSQL.

Run:  .venv/bin/python -m benchmarks.rf [--customers 1000000] [--orders 10000000]

It creates a database of its own on the local PostgreSQL (dropped at the end), migrates it,
and loads customers and orders with `generate_series` (orders spread over two years, random
customers), with their purchase totals. Then, in one run, it prints:

- bare:        `SELECT customer_id, count(*) FROM orders GROUP BY customer_id` (the floor);
- first:       the first full recompute, in pages of 10,000 customers (everyone enters a
               segment: one move and one event each);
- steady:      a full recompute when nothing changed (what a config change costs to check),
               and its ratio to `bare` (target: at most 2x);
- daily:       the daily time-passing run, one day later (indexed look-up of the customers
               whose last purchase crossed a bound, then their refresh);
- incremental: 10,000 new orders, then the refresh of their customers (target: under 1 s).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa

from tropa.services import segments
from tropa.store.db import make_engine, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _seed(engine: sa.Engine, customers: int, orders: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (id, phone_verified, email_verified, time_zone, locale, "
            "consents, tags, attributes, created_at, updated_at) "
            "SELECT 'c' || lpad(i::text, 8, '0'), false, false, 'Europe/Moscow', 'ru', '{}', "
            "'[]', '{}', :now, :now FROM generate_series(1, :n) AS i"),
            {"n": customers, "now": now})
        conn.execute(sa.text(
            "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, refunded, "
            "channel, items, attributes, body_hash, counted, created_at, updated_at) "
            "SELECT 'o' || i, 'c' || lpad((1 + floor(random() * :c))::int::text, 8, '0'), "
            ":now - random() * interval '730 days', 'placed', 'RUB', 1000, 0, 'online', '[]', "
            "'{}', 'h', true, :now, :now FROM generate_series(1, :n) AS i"),
            {"c": customers, "n": orders, "now": now})
        conn.execute(sa.text(
            "INSERT INTO purchase_stats (customer_id, currency, orders_count, total_spent, "
            "first_purchase_at, last_purchase_at) SELECT customer_id, currency, count(*), "
            "sum(total), min(placed_at), max(placed_at) FROM orders GROUP BY customer_id, "
            "currency"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def _timed(label: str, fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"{label:<13} {seconds:8.2f} s", flush=True)
    return seconds, result


def main() -> None:
    """Run the benchmark and print its figures."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--customers", type=int, default=1_000_000)
    args.add_argument("--orders", type=int, default=10_000_000)
    opts = args.parse_args()
    name = f"tropa_bench_rf_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        print(f"{opts.customers:,} customers, {opts.orders:,} orders", flush=True)
        _timed("seed", lambda: _seed(engine, opts.customers, opts.orders, now))

        def bare() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT count(*) FROM (SELECT customer_id, count(*) "
                                     "FROM orders GROUP BY customer_id) g")).scalar()

        bare_s, _ = _timed("bare", bare)
        _timed("first", lambda: segments.recompute_all(engine, now=now, cause="config"))
        steady_s, _ = _timed("steady", lambda: segments.recompute_all(engine, now=now,
                                                                      cause="config"))
        print(f"steady/bare   {steady_s / bare_s:8.2f} x (target <= 2)")
        later = now + timedelta(days=1)
        with engine.begin() as conn:  # the last daily run was `now`
            conn.execute(sa.text("INSERT INTO sweep_marks (name, done_until) VALUES "
                                 "('rf-daily', :now)"), {"now": now})
        _, daily = _timed("daily", lambda: segments.time_passing(engine, now=later))
        checked, events = daily  # type: ignore[misc]
        print(f"              checked {checked:,} customers, {len(events):,} events")
        with engine.begin() as conn:
            ids = [str(r[0]) for r in conn.execute(sa.text(
                "SELECT id FROM customers ORDER BY random() LIMIT 10000"))]
            conn.execute(sa.text(
                "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, "
                "refunded, channel, items, attributes, body_hash, counted, created_at, "
                "updated_at) VALUES (:id, :c, :at, 'placed', 'RUB', 1000, 0, 'online', '[]', "
                "'{}', 'h', true, :at, :at)"),
                [{"id": f"new-{c}", "c": c, "at": later} for c in ids])
        inc_s, moved = _timed("incremental", lambda: segments.refresh_customers(
            engine, ids, now=later, cause="purchase"))
        print(f"              10,000 customers refreshed, {len(moved):,} events "  # type: ignore[arg-type]
              f"(target < 1 s: {'met' if inc_s < 1 else 'missed'})")
        engine.dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

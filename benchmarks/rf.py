"""RF benchmark: segments of a large base on PostgreSQL.

Run:  .venv/bin/python -m benchmarks.rf [--customers 1000000] [--orders 10000000] [--repeat 3]

It creates a database of its own on the local PostgreSQL (dropped at the end unless --keep),
migrates it, and loads customers and orders with `generate_series` inside the server (orders
in time order over two years, each for a random customer; the orders' secondary indexes are
dropped for the load and built again after it), with their purchase totals, then VACUUM
ANALYZE. Then, in one run, it prints:

- bare:        `SELECT customer_id, count(*) FROM orders GROUP BY customer_id` (the floor),
               its rows summed in the server;
- groups:      the same with the counts unread, which PostgreSQL then skips: only the
               grouping of the index entries (what runs before 2026-11 printed as `bare`);
- first:       the first full recompute, in pages of 10,000 customers (everyone enters a
               segment: one move and one event each);
- steady:      a full recompute when nothing changed (what a config change costs to check),
               each run beside a bare and a groups run, and the ratios (target: at most
               2x bare);
- daily:       the daily time-passing run, one day later (indexed look-up of the customers
               whose last purchase crossed a bound, then their refresh);
- incremental: 10,000 new orders (each for another random customer), then the refresh of
               their customers in one call (target: under 1 s). Only that call is timed
               (configuration, locks, computing, writing moves, history and event rows,
               the events to route, commit); the orders before it and routing are not.

Every timed line shows the wall time and the CPU time spent on it by PostgreSQL's backends of
this database and by this process. The machine may be shared: the CPU time and the ratios of
runs taken side by side change less with the load than the wall time does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from benchmarks._database import throwaway_database
from tropa.services import segments
from tropa.store.db import make_engine, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TICK = os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time and CPU time (this process and the database's backends) of a step."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.admin = psycopg.connect(ADMIN, autocommit=True)

    def _cpu(self) -> float:
        pids = [r[0] for r in self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,))]
        total = time.process_time()
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile, or a server on another machine
                continue
            total += (int(fields[11]) + int(fields[12])) / TICK
        return total

    def timed(self, label: str, fn: Callable[[], Any]) -> tuple[float, float, Any]:
        """Run `fn`, print its wall and CPU seconds under `label`."""
        cpu, start = self._cpu(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - start, self._cpu() - cpu
        print(f"{label:<13} {wall:8.2f} s  (cpu {cpu:6.2f} s)", flush=True)
        return wall, cpu, result


def _seed(engine: sa.Engine, customers: int, orders: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
        # Indexes are built once after the load instead of row by row during it.
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)")).all()
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        conn.execute(sa.text(
            "INSERT INTO customers (id, phone_verified, email_verified, time_zone, locale, "
            "consents, tags, attributes, created_at, updated_at) "
            "SELECT 'c' || lpad(i::text, 8, '0'), false, false, 'Europe/Moscow', 'ru', '{}', "
            "'[]', '{}', :now, :now FROM generate_series(1, :n) AS i"),
            {"n": customers, "now": now})
        # Orders arrive in time order (ids rise with time), each for a random customer.
        conn.execute(sa.text(
            "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, refunded, "
            "channel, items, attributes, body_hash, counted, created_at, updated_at) "
            "SELECT 'o' || lpad(i::text, 9, '0'), "
            "'c' || lpad((1 + floor(random() * :c))::int::text, 8, '0'), "
            "CAST(:now AS timestamptz) - interval '730 days' * (1 - i::float8 / :n), "
            "'placed', 'RUB', 1000, 0, 'online', '[]', '{}', 'h', true, :now, :now "
            "FROM generate_series(1, :n) AS i"),
            {"c": customers, "n": orders, "now": now})
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        conn.execute(sa.text(
            "INSERT INTO purchase_stats (customer_id, currency, orders_count, total_spent, "
            "first_purchase_at, last_purchase_at) SELECT customer_id, currency, count(*), "
            "sum(total), min(placed_at), max(placed_at) FROM orders GROUP BY customer_id, "
            "currency"))
    _vacuum(engine)


def _vacuum(engine: sa.Engine, *tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {', '.join(tables)}"))


def _bare(engine: sa.Engine) -> None:
    # The per-customer counts are summed, so PostgreSQL computes them (it drops an aggregate
    # nobody reads) without sending a million rows to the client.
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*), sum(n) FROM (SELECT customer_id, count(*) AS n "
                             "FROM orders GROUP BY customer_id) g")).one()


def _groups(engine: sa.Engine) -> None:
    # The figure earlier runs printed as `bare`: PostgreSQL drops the unread count(*), so
    # this only groups the index entries by customer.
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM (SELECT customer_id, count(*) "
                             "FROM orders GROUP BY customer_id) g")).scalar()


def _new_orders(engine: sa.Engine, at: datetime, count: int, tag: str) -> list[str]:
    with engine.begin() as conn:
        ids = [str(r[0]) for r in conn.execute(sa.text(
            "SELECT id FROM customers ORDER BY random() LIMIT :n"), {"n": count})]
        conn.execute(sa.text(
            "INSERT INTO orders (id, customer_id, placed_at, status, currency, total, "
            "refunded, channel, items, attributes, body_hash, counted, created_at, "
            "updated_at) SELECT 'new-' || :tag || '-' || c, c, :at, 'placed', 'RUB', 1000, 0, "
            "'online', '[]', '{}', 'h', true, :at, :at FROM unnest(CAST(:ids AS text[])) AS c"),
            {"ids": ids, "at": at, "tag": tag})
    return ids


def main() -> None:
    """Run the benchmark and print its figures."""
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--customers", type=int, default=1_000_000)
    args.add_argument("--orders", type=int, default=10_000_000)
    args.add_argument("--repeat", type=int, default=3,
                      help="bare/steady pairs and incremental rounds (default 3)")
    args.add_argument("--keep", action="store_true", help="keep the database at the end")
    opts = args.parse_args()
    with throwaway_database(ADMIN, "tropa_bench_rf", keep=opts.keep) as (name, url):
        meter = Meter(name)
        try:
            migrate(url)
            engine = make_engine(url)
            now = datetime.now(UTC)
            print(f"{opts.customers:,} customers, {opts.orders:,} orders, {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            meter.timed("seed", lambda: _seed(engine, opts.customers, opts.orders, now))
            meter.timed("bare", lambda: _bare(engine))
            _, _, first = meter.timed("first", lambda: segments.recompute_all(
                engine, now=now, cause="config"))
            print(f"              {first[0]:,} moves, {len(first[1]):,} events")
            # What autovacuum does within a minute of the first recompute; the steady state is
            # measured as a running system sees it.
            meter.timed("vacuum", lambda: _vacuum(engine, "customer_segments"))
            ratios: dict[str, list[tuple[float, float]]] = {"bare": [], "groups": []}
            for _ in range(opts.repeat):
                bare = meter.timed("bare", lambda: _bare(engine))
                groups = meter.timed("groups", lambda: _groups(engine))
                steady = meter.timed("steady", lambda: segments.recompute_all(
                    engine, now=now, cause="config"))
                assert steady[2] == (0, []), "nothing changed, so nobody may move"
                for floor_name, floor in (("bare", bare), ("groups", groups)):
                    ratios[floor_name].append((steady[0] / floor[0],
                                               steady[1] / max(floor[1], 0.01)))
                print(f"steady/bare   {ratios['bare'][-1][0]:8.2f} x  "
                      f"(cpu {ratios['bare'][-1][1]:6.2f} x);  steady/groups "
                      f"{ratios['groups'][-1][0]:.2f} x (cpu {ratios['groups'][-1][1]:.2f} x)",
                      flush=True)
            for floor_name, pairs in ratios.items():
                wall = statistics.median(p[0] for p in pairs)
                print(f"steady/{floor_name:<6} median {wall:.2f} x wall, "
                      f"{statistics.median(p[1] for p in pairs):.2f} x cpu"
                      + (" (target <= 2)" if floor_name == "bare" else ""), flush=True)
            later = now + timedelta(days=1)
            with engine.begin() as conn:  # the last daily run was `now`
                conn.execute(sa.text("INSERT INTO sweep_marks (name, done_until) VALUES "
                                     "('rf-daily', :now)"), {"now": now})
            _, _, daily = meter.timed("daily", lambda: segments.time_passing(engine, now=later))
            print(f"              checked {daily[0]:,} customers, {len(daily[1]):,} events")
            for round_ in range(opts.repeat):
                at = later + timedelta(minutes=round_ + 1)
                ids = _new_orders(engine, at, 10_000, str(round_))
                wall, _, events = meter.timed("incremental", lambda: segments.refresh_customers(
                    engine, ids, now=at, cause="purchase"))  # noqa: B023 - called at once
                moves = len({e.event_id.rsplit("-", 1)[0] for e in events})
                print(f"              10,000 customers refreshed, {moves:,} moved, "
                      f"{len(events):,} events (target < 1 s: {'met' if wall < 1 else 'missed'})",
                      flush=True)
            print(f"load average at the end {os.getloadavg()[0]:.1f}")
            engine.dispose()
        finally:
            meter.admin.close()


if __name__ == "__main__":
    main()

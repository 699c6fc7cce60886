"""Ledger throughput on PostgreSQL: accruals and write-offs per second with concurrent clients,
and the balance query time for a customer with many entries.

    .venv/bin/python -m benchmarks.ledger                    # 32 clients, 10,000 entries
    .venv/bin/python -m benchmarks.ledger --clients 8 --ops 200 --entries 2000
    .venv/bin/python -m benchmarks.ledger --url postgresql+psycopg://postgres@127.0.0.1/x

It makes a database of its own on the local PostgreSQL (dropped at the end) unless `--url`
names one. Each client is a thread with its own connection, calling the ledger the way the
API and the steps do (one transaction per operation, the account row locked).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from benchmarks._database import throwaway_database
from tropa.errors import Overdraw
from tropa.loyalty import ledger
from tropa.loyalty.models import Source
from tropa.loyalty.programme import Programme
from tropa.store.db import migrate, session_scope
from tropa.store.models import Customer

PROGRAMME = Programme()
SOURCE = Source(kind="import", job="benchmark")


def _customers(engine: sa.Engine, n: int) -> list[str]:
    ids = [f"bench-{i}" for i in range(n)]
    with session_scope(engine) as session:
        for cid in ids:
            session.add(Customer(id=cid))
    return ids


def _timed(clients: int, ops: int, work: Callable[[int, int], None]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        mine = []
        for n in range(ops):
            t0 = time.perf_counter()
            work(c, n)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - start, latencies


def _report(name: str, count: int, elapsed: float, latencies: list[float]) -> None:
    lat = sorted(latencies)
    p95 = lat[int(len(lat) * 0.95)] if lat else 0.0
    print(f"{name:<26} {count:>7} ops {elapsed:>7.2f} s {count / elapsed:>9.0f} ops/s   "
          f"p50 {statistics.median(lat) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms")


def run(url: str, clients: int, ops: int, entries: int, throughput: bool = True) -> None:
    """Print the figures."""
    migrate(url)
    engine = sa.create_engine(url, pool_size=clients + 4, max_overflow=8)
    run_id = uuid.uuid4().hex[:8]
    if throughput:
        _throughput(engine, clients, ops, run_id)
    _balance_time(engine, entries, run_id)
    engine.dispose()


def _throughput(engine: sa.Engine, clients: int, ops: int, run_id: str) -> None:
    print(f"PostgreSQL, {clients} concurrent clients, {ops} operations each\n")

    # One customer per client: operations on different accounts run in parallel.
    spread = _customers(engine, clients)

    def accrue_spread(c: int, n: int) -> None:
        with session_scope(engine) as s:
            ledger.accrue(s, PROGRAMME, customer_id=spread[c], amount=100,
                          idempotency_key=f"{run_id}/a/{c}/{n}", source=SOURCE,
                          expires_at=datetime.now(UTC) + timedelta(days=30 + n % 60))

    elapsed, lat = _timed(clients, ops, accrue_spread)
    _report("accrue (own account)", clients * ops, elapsed, lat)

    def write_off_spread(c: int, n: int) -> None:
        with session_scope(engine) as s:
            ledger.write_off(s, PROGRAMME, customer_id=spread[c], amount=70,
                             idempotency_key=f"{run_id}/w/{c}/{n}", source=SOURCE)

    elapsed, lat = _timed(clients, ops, write_off_spread)
    _report("write-off (own account)", clients * ops, elapsed, lat)

    # Every client on one account: the row lock makes them take turns.
    hot = spread[0]
    refused = 0

    def contended(c: int, n: int) -> None:
        nonlocal refused
        with session_scope(engine) as s:
            if n % 2 == 0:
                ledger.accrue(s, PROGRAMME, customer_id=hot, amount=50,
                              idempotency_key=f"{run_id}/h/{c}/{n}", source=SOURCE)
            else:
                try:
                    ledger.write_off(s, PROGRAMME, customer_id=hot, amount=40,
                                     idempotency_key=f"{run_id}/h/{c}/{n}", source=SOURCE)
                except Overdraw:
                    refused += 1

    elapsed, lat = _timed(clients, max(ops // 4, 1), contended)
    _report("mixed (one hot account)", clients * max(ops // 4, 1), elapsed, lat)
    with session_scope(engine) as s:
        final = ledger.balance(s, PROGRAMME, hot).bonus.balance
    print(f"{'':<26} hot account balance {final} (never negative), {refused} overdraws refused")


def _balance_time(engine: sa.Engine, entries: int, run_id: str) -> None:
    """Balance of a customer with about `entries` statement lines."""
    big = f"bench-big-{run_id}"
    with session_scope(engine) as s:
        s.add(Customer(id=big))
    base = datetime.now(UTC)
    made = 0
    # Two accruals (one entry each) to every write-off (two entries): 3 operations give 4.
    while made < entries * 3 // 4:
        with session_scope(engine) as s:
            for _ in range(min(500, entries * 3 // 4 - made)):
                kind = made % 3
                if kind < 2:
                    ledger.accrue(s, PROGRAMME, customer_id=big, amount=100,
                                  idempotency_key=f"{run_id}/big/{made}", source=SOURCE,
                                  expires_at=base + timedelta(days=1 + made % 400), now=base)
                else:
                    ledger.write_off(s, PROGRAMME, customer_id=big, amount=150,
                                     idempotency_key=f"{run_id}/big/{made}", source=SOURCE,
                                     now=base)
                made += 1
    with engine.connect() as conn:
        lines = conn.execute(sa.text(
            "SELECT count(*) FROM loyalty_entries e JOIN loyalty_accounts a "
            "ON a.id = e.account_id WHERE a.customer_id = :c"), {"c": big}).scalar_one()
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            result = ledger.balance(s, PROGRAMME, big)
        times.append(time.perf_counter() - t0)
    print(f"\nbalance of a customer with {lines} entries: median "
          f"{statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms "
          f"(50 reads; balance {result.bonus.balance})")


def main() -> None:
    """Parse arguments, make a database unless given one, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--url", default="", help="SQLAlchemy URL of a PostgreSQL database")
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL used to create and drop a database of its own")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--ops", type=int, default=100, help="operations per client")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--balance-only", action="store_true",
                        help="skip the throughput runs; only time the balance query")
    args = parser.parse_args()
    if args.url:
        run(args.url, args.clients, args.ops, args.entries, not args.balance_only)
        return
    with throwaway_database(args.admin, "tropa_bench") as (_, url):
        run(url, args.clients, args.ops, args.entries, not args.balance_only)


if __name__ == "__main__":
    main()

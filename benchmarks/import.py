# ruff: noqa: N999 - the file is named for the command it measures (`tropa customers import`)
"""Import benchmark: N customer rows from a CSV file into PostgreSQL and into SQLite.

    .venv/bin/python -m benchmarks.import                  # 1,000,000 rows, both databases
    .venv/bin/python -m benchmarks.import --rows 200000 --only postgresql

Writes a CSV of customers (id, external_id, names, phone, email, birthday, tags, a card),
then runs the same import `tropa customers import` runs, into a fresh database each, and
prints rows/s. A second run of the same file on PostgreSQL shows the re-run (nothing changes).
PostgreSQL: the local server at TROPA_TEST_PG (postgresql://postgres@127.0.0.1:5432/postgres);
a database of its own is made and dropped.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from benchmarks._database import throwaway_database
from tropa.customers.imports.job import import_customers, new_job
from tropa.store.db import make_engine, migrate

PG_ADMIN = os.environ.get("TROPA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NAMES = ["Olga", "Ivan", "Anna", "Petr", "Maria", "Oleg", "Vera", "Lev", "Nina", "Igor"]


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "external_id", "first_name", "last_name", "phone", "email",
                    "birthday", "tags", "card"])
        for n in range(rows):
            w.writerow([f"c-{n}", f"crm-{n}", NAMES[n % 10], NAMES[(n // 10) % 10] + "ova",
                        f"+7916{n:07d}", f"user{n}@example.ru",
                        f"{1 + n % 28:02d}.{1 + n % 12:02d}.{1950 + n % 50}",
                        "vip" if n % 7 == 0 else "", f"29{n:011d}"])


def run(url: str, path: Path, label: str, rows: int) -> None:
    migrate(url)
    engine = make_engine(url)
    for attempt in ("first", "re-run") if label == "postgresql" else ("first",):
        job = new_job(engine, "customers", path.name, dry_run=False)
        started = time.monotonic()
        summary = import_customers(engine, path, job_id=job)
        elapsed = time.monotonic() - started
        print(f"{label:<11} {attempt:<7} {rows:>9,} rows  {elapsed:7.1f} s  "
              f"{rows / elapsed:>9,.0f} rows/s  imported {summary.imported:,}  "
              f"unchanged {summary.unchanged:,}  rejected {summary.rejected:,}", flush=True)
    engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--only", choices=["postgresql", "sqlite"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        started = time.monotonic()
        write_file(path, args.rows)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        if args.only in (None, "postgresql"):
            with throwaway_database(PG_ADMIN, "tropa_bench") as (_, url):
                run(url, path, "postgresql", args.rows)
        if args.only in (None, "sqlite"):
            run(f"sqlite:///{Path(tmp) / 'tropa.db'}", path, "sqlite", args.rows)


if __name__ == "__main__":
    main()

"""Date and inactivity sweep benchmark: hourly sweeps over a large base on PostgreSQL.

Run:  .venv/bin/python -m benchmarks.sweep [--customers 1000000] [--hours 24]

It creates a database of its own on the local PostgreSQL (dropped at the end), migrates it,
and loads customers in five Russian time zones with a birthday each (spread over 1950-2005),
their `customer_dates` rows, and a last `order.placed` for each (spread over two years). Then
it runs `--hours` consecutive hourly sweeps of a birthday journey (`offset: -1d`, `at:
"10:00"`) and a 90-day inactivity journey, and prints per sweep the occurrences claimed and
the seconds taken, then min / median / max (target: under 2 s per hourly sweep).

What is timed is the product's sweep (`TimeTriggerSweep.run`): the indexed look-ups, the
claims and the marks. Starting the runs is left out (a stand-in router answers "started"):
that is Temporal's start rate, which `benchmarks.ingest` measures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import sqlalchemy as sa

from benchmarks._database import throwaway_database
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import Plan
from tropa.services.time_triggers import TimeTriggerSweep
from tropa.store.db import make_engine, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ZONES = ("Europe/Moscow", "Europe/Kaliningrad", "Asia/Yekaterinburg", "Asia/Novosibirsk",
         "Asia/Vladivostok")
BIRTHDAY = """
journey: birthday
trigger: {date: customer.birthday, offset: -1d, at: "10:00", every: year}
steps:
  - send: {channel: sms, text: "Happy birthday"}
"""
WINBACK = """
journey: winback
trigger:
  inactivity: {event: order.placed, for: 90d, at: "11:00"}
steps:
  - send: {channel: sms, text: "We miss you"}
"""


class _Starter:
    """Stands in for the event router: every start succeeds at once."""

    async def start_occurrence(self, *_: Any, **__: Any) -> str:
        return "started"


def _seed(engine: sa.Engine, customers: int, now: datetime) -> None:
    zones = "ARRAY[" + ", ".join(f"'{z}'" for z in ZONES) + "]"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (id, phone_verified, email_verified, time_zone, locale, "
            "birthday, consents, tags, attributes, created_at, updated_at) "
            f"SELECT 'c' || lpad(i::text, 8, '0'), false, false, ({zones})[1 + i % 5], 'ru', "
            "date '1950-01-01' + (random() * 20000)::int, '{}', '[]', '{}', :now, :now "
            "FROM generate_series(1, :n) AS i"), {"n": customers, "now": now})
        conn.execute(sa.text(
            "INSERT INTO customer_dates (customer_id, path, item, time_zone, month_day, value) "
            "SELECT id, 'customer.birthday', 0, time_zone, to_char(birthday, 'MM-DD'), birthday "
            "FROM customers"))
        conn.execute(sa.text(
            "INSERT INTO customer_dates (customer_id, path, item, time_zone, month_day, value) "
            "SELECT id, 'customer.created_at', 0, time_zone, to_char(created_at, 'MM-DD'), "
            "created_at::date FROM customers"))
        conn.execute(sa.text(
            "INSERT INTO customer_last_events (customer_id, event_type, last_at, event_id) "
            "SELECT id, 'order.placed', :now - random() * interval '730 days', 'o-' || id "
            "FROM customers"), {"now": now})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


async def _sweeps(engine: sa.Engine, plans: list[Plan], start: datetime,
                  hours: int) -> list[float]:
    sweep = TimeTriggerSweep(engine, _Starter())  # type: ignore[arg-type]
    took: list[float] = []
    for hour in range(hours):
        now = start + timedelta(hours=hour)
        began = time.perf_counter()
        counts = await sweep.run(plans, now)
        took.append(time.perf_counter() - began)
        print(f"  {now:%Y-%m-%d %H:%M} UTC  claimed {counts.started:6d}  "
              f"{took[-1]:.3f} s")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--admin-url", default=ADMIN)
    args = parser.parse_args()
    with throwaway_database(args.admin_url, "tropa_bench_sweep") as (_, url):
        migrate(url)
        engine = make_engine(url)
        today = datetime.now(UTC).date()
        start = datetime.combine(today, clock_time(0), tzinfo=UTC)
        began = time.perf_counter()
        _seed(engine, args.customers, start)
        print(f"seeded {args.customers} customers in {time.perf_counter() - began:.1f} s")
        plans = [compile_journey(BIRTHDAY), compile_journey(WINBACK)]
        took = asyncio.run(_sweeps(engine, plans, start, args.hours))
        print(f"hourly sweep over {args.customers} customers, {args.hours} sweeps: "
              f"min {min(took):.3f} s, median {statistics.median(took):.3f} s, "
              f"max {max(took):.3f} s (target < 2 s)")
        engine.dispose()


if __name__ == "__main__":
    main()

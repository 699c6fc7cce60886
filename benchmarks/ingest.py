"""Ingest benchmark: events through Tropa's HTTP API against raw signal-with-start.

Run:  .venv/bin/python -m benchmarks.ingest [--events 800] [--batch-size 250]

It starts a Temporal dev server (SQLite with WAL, Tropa's search attributes) or uses
`--temporal host:port`, then `tropa worker` and `tropa api` as processes of their own on a
fresh SQLite database, publishes a one-step journey, and in one run measures:

- single: N events, one `POST /v1/events` each, `--concurrency` requests in flight;
- batch:  N events in `POST /v1/events:batch` requests of `--batch-size`;
- raw:    N `client.start_workflow(..., start_signal=...)` (signal-with-start) calls of
          JourneyRun from a bare temporalio client, `--concurrency` in flight.

Every event starts one run. It prints events per second per path, the ratio Tropa/raw and
the p50/p95 latency from the request to the run's first step (the step's start time in the
run's `status` query, for a sample of runs). All traffic stays on the loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from benchmarks._stack import Stack, temporal_server, tropa_processes
from tropa.dsl.plan import EventIn, Plan, RunInput, RunStatus
from tropa.services import journeys
from tropa.services.api_keys import create_key
from tropa.settings import TemporalSettings
from tropa.store.db import make_engine, session_scope
from tropa.store.models import Customer
from tropa.worker.devserver import register_search_attributes
from tropa.worker.temporal_client import connect
from tropa.workflows import search_attributes as sa_keys

# One control step: the run records its first step and ends, so the worker's share of the
# load is the same small workflow task on every path and runs do not pile up.
JOURNEY = """
journey: {name}
trigger: {{event: {event}}}
settings: {{category: service}}
steps:
  - exit: benchmarked
"""


@dataclass
class PathResult:
    """What one path did: its rate and latencies to the first step."""

    name: str
    events: int
    seconds: float
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    drain_seconds: float = 0.0
    """From the path's first request until the sampled runs had all taken their first step."""

    @property
    def rate(self) -> float:
        """Events accepted per second."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def run_rate(self) -> float:
        """Runs per second that reached their first step (the worker's pace)."""
        return self.events / self.drain_seconds if self.drain_seconds else 0.0


def _event(event_type: str, customer: str) -> dict[str, Any]:
    return {"event_id": f"evt-{uuid.uuid4().hex}", "type": event_type, "customer_id": customer,
            "occurred_at": datetime.now(UTC).isoformat(), "data": {}}


async def _bounded(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    """Run the jobs with at most `concurrency` in flight; the wall time in seconds."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(one(j) for j in jobs))
    return time.perf_counter() - started


class Bench:
    """The paths, sharing one stack, one journey and one HTTP client."""

    def __init__(self, stack: Stack, client: Client, http: httpx.AsyncClient, plan: Plan,
                 event_type: str) -> None:
        self.stack, self.client, self.http = stack, client, http
        self.plan, self.event_type = plan, event_type
        self.sent_at: dict[str, float] = {}  # workflow id -> wall clock of its request

    def _workflow_id(self, customer: str) -> str:
        return f"journey/{self.plan.journey}/{customer}"

    async def single(self, customers: list[str], concurrency: int) -> PathResult:
        result = PathResult("single", len(customers), 0.0)

        def job(customer: str) -> Callable[[], Awaitable[None]]:
            async def post() -> None:
                self.sent_at[self._workflow_id(customer)] = time.time()
                response = await self.http.post("/v1/events",
                                                json=_event(self.event_type, customer))
                if response.status_code != 202 or not response.json().get("started"):
                    result.errors += 1
            return post

        result.seconds = await _bounded([job(c) for c in customers], concurrency)
        return result

    async def batch(self, customers: list[str], size: int, concurrency: int) -> PathResult:
        result = PathResult("batch", len(customers), 0.0)

        def job(chunk: list[str]) -> Callable[[], Awaitable[None]]:
            async def post() -> None:
                now = time.time()
                for customer in chunk:
                    self.sent_at[self._workflow_id(customer)] = now
                response = await self.http.post(
                    "/v1/events:batch",
                    json={"events": [_event(self.event_type, c) for c in chunk]})
                if response.status_code != 202:
                    result.errors += len(chunk)
                    return
                result.errors += sum(not item.get("started") for item in response.json()["items"])
            return post

        chunks = [customers[i:i + size] for i in range(0, len(customers), size)]
        result.seconds = await _bounded([job(c) for c in chunks], concurrency)
        return result

    async def raw(self, customers: list[str], concurrency: int) -> PathResult:
        """Signal-with-start of the same workflow with the same input, no Tropa in between."""
        result = PathResult("raw", len(customers), 0.0)

        def job(customer: str) -> Callable[[], Awaitable[None]]:
            async def start() -> None:
                event = EventIn.model_validate(_event(self.event_type, customer))
                workflow_id = self._workflow_id(customer)
                self.sent_at[workflow_id] = time.time()
                try:
                    await self.client.start_workflow(
                        "JourneyRun",
                        RunInput(plan=self.plan, customer_id=customer, trigger_event=event),
                        id=workflow_id, task_queue=self.stack.task_queue,
                        start_signal="event", start_signal_args=[event],
                        search_attributes=TypedSearchAttributes([
                            SearchAttributePair(sa_keys.JOURNEY, self.plan.journey),
                            SearchAttributePair(sa_keys.CUSTOMER, customer),
                            SearchAttributePair(sa_keys.VERSION, self.plan.version),
                            SearchAttributePair(sa_keys.STEP, "start"),
                        ]))
                except Exception:  # counted; the benchmark goes on
                    result.errors += 1
            return start

        result.seconds = await _bounded([job(c) for c in customers], concurrency)
        return result

    async def first_step_latencies(self, customers: list[str], sample: int,
                                   into: PathResult | None = None) -> list[float]:
        """Seconds from each sampled run's request to its first step, from `status`."""
        step = max(1, len(customers) // sample)
        picked = [*customers[::step][:sample - 1], customers[-1]]
        latencies: list[float] = []
        firsts: list[float] = []

        async def probe(customer: str) -> None:
            workflow_id = self._workflow_id(customer)
            handle = self.client.get_workflow_handle(workflow_id)
            deadline = time.monotonic() + 120
            while True:
                try:
                    status: RunStatus = await handle.query("status", result_type=RunStatus)
                    if status.steps:
                        first = status.steps[0].started_at.timestamp()
                        latencies.append(first - self.sent_at[workflow_id])
                        firsts.append(first)
                        return
                except Exception:  # the run may not have started yet
                    if time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.2)

        await _bounded([lambda c=c: probe(c) for c in picked], 16)  # type: ignore[misc]
        if into is not None:
            into.drain_seconds = max(firsts) - min(self.sent_at[self._workflow_id(c)]
                                                   for c in customers)
        return latencies


def _setup(stack: Stack, tag: str, customers: int) -> tuple[Plan, str, str]:
    """Publish the journey, store the customers, make a key: (plan, event type, key)."""
    engine = make_engine(stack.database_url)
    name, event_type = f"bench-{tag}", f"bench.{tag}"
    with session_scope(engine) as session:
        row = journeys.create_version(session, JOURNEY.format(name=name, event=event_type),
                                      "<benchmark>")
        journeys.publish(session, row.journey, row.version)
        plan = Plan.model_validate(row.plan)
        key = create_key(session, "benchmark", ["events:write"])
    with session_scope(engine) as session:
        session.add_all([Customer(id=f"{p}-{i}", time_zone="Europe/Moscow")
                         for p in ("w", "s", "b", "r") for i in range(customers)])
    engine.dispose()
    return plan, event_type, key


async def _warm_up(bench: Bench) -> None:
    """Until an event starts a run: the API's journey catalogue and the worker are ready."""
    deadline = time.monotonic() + 60
    n = 0
    while True:
        bench.sent_at[bench._workflow_id(f"w-{n}")] = time.time()
        response = await bench.http.post("/v1/events", json=_event(bench.event_type, f"w-{n}"))
        if response.status_code == 202 and response.json().get("started"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"warm-up event did not start a run: {response.text}")
        n += 1
        await asyncio.sleep(0.25)
    await bench.first_step_latencies([f"w-{n}"], 1)
    warm = [f"w-{i}" for i in range(n + 1, n + 21)]
    await bench.single(warm[:10], 4)
    await bench.batch(warm[10:], 10, 1)
    await bench.raw([f"r-w{i}" for i in range(10)], 4)


async def _drained(client: Client, journey: str) -> None:
    """Wait until no run of the journey is open, so one path's tail does not slow the next."""
    deadline = time.monotonic() + 120
    query = f"TropaJourney = '{journey}' AND ExecutionStatus = 'Running'"
    while time.monotonic() < deadline:
        if not (await client.count_workflows(query)).count:
            return
        await asyncio.sleep(0.2)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _report(results: list[PathResult], args: argparse.Namespace) -> None:
    raw = next(r for r in results if r.name == "raw")
    print(f"\ningest benchmark: {args.events} events per path, batch size {args.batch_size}, "
          f"concurrency {args.concurrency}, latency sample {args.sample} runs per path")
    print(f"{'path':8} {'events/s':>9} {'vs raw':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'runs/s':>7} {'errors':>7}")
    for r in results:
        print(f"{r.name:8} {r.rate:9.1f} {r.rate / raw.rate:7.2f} "
              f"{_pct(r.latencies, .5) * 1000:8.0f} {_pct(r.latencies, .95) * 1000:8.0f} "
              f"{r.run_rate:7.1f} {r.errors:7d}")
    print("runs/s: runs that reached their first step per second (the worker's pace); "
          "latency is request -> first step")
    print()
    for r in results:
        if r.name in ("single", "batch"):
            verdict = "meets" if r.rate / raw.rate >= 0.8 else "misses"
            print(f"{r.name}/raw = {r.rate / raw.rate:.2f} ({verdict} the target of 0.8)")


async def run(args: argparse.Namespace) -> int:
    """Start the stack, run every path, print the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="tropa-bench-"))
    tag = uuid.uuid4().hex[:8]
    with temporal_server(workdir, args.temporal) as address, \
            tropa_processes(workdir, address, f"bench-{tag}") as stack:
        client = await connect(TemporalSettings(), address=address)
        await register_search_attributes(client)
        plan, event_type, key = _setup(stack, tag, args.events + 50)
        async with httpx.AsyncClient(base_url=stack.api, headers={"X-API-Key": key},
                                     timeout=120,
                                     limits=httpx.Limits(max_connections=args.concurrency)) as http:
            bench = Bench(stack, client, http, plan, event_type)
            await _warm_up(bench)
            await _drained(client, plan.journey)
            results: list[PathResult] = []
            paths: list[tuple[str, Callable[[list[str]], Awaitable[PathResult]]]] = [
                ("r", lambda c: bench.raw(c, args.concurrency)),
                ("s", lambda c: bench.single(c, args.concurrency)),
                ("b", lambda c: bench.batch(c, args.batch_size, args.batch_concurrency)),
            ]
            for prefix, path in paths:
                customers = [f"{prefix}-{i}" for i in range(args.events)]
                result = await path(customers)
                result.latencies = await bench.first_step_latencies(customers, args.sample,
                                                                    result)
                await _drained(client, plan.journey)
                print(f"{result.name}: {result.rate:.1f} events/s "
                      f"({result.events} in {result.seconds:.2f}s, {result.errors} errors)",
                      flush=True)
                results.append(result)
        _report(results, args)
    print(f"logs and databases: {workdir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--events", type=int, default=800, help="events per path")
    p.add_argument("--batch-size", type=int, default=250, help="events per batch request")
    p.add_argument("--concurrency", type=int, default=32,
                   help="requests (single) and starts (raw) in flight")
    p.add_argument("--batch-concurrency", type=int, default=2, help="batch requests in flight")
    p.add_argument("--sample", type=int, default=200, help="runs per path for latencies")
    p.add_argument("--temporal", default="",
                   help="host:port of a running Temporal to reuse; empty starts a dev server")
    return asyncio.run(run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

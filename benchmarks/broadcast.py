"""Broadcast benchmark: one email to every customer of a base on PostgreSQL, into the sandbox.

Run:  .venv/bin/python -m benchmarks.broadcast [--recipients 100000] [--calibrate 5000]

It creates a database of its own on the local PostgreSQL (dropped at the end), loads the
customers with `generate_series` (each with an email and email consent, tagged `bench`),
starts a Temporal dev server (or uses `--temporal host:port`), the sandbox provider server
and `tropa worker` as processes of their own, with the channel rate limits off. Then, in
one run, it prints:

- sandbox:  the sandbox's own accept rate, measured in the same run: `--calibrate` emails
            straight through Tropa's email adapter, 8 in flight (what one deliver
            activity does);
- snapshot: recipients written per second (the audience `tag: bench` paged into the list);
- send:     messages per second from the snapshot to the last message handed over (gate,
            render, log, provider call), and its ratio to the sandbox's rate (target 0.5);
- total:    recipients per second from `POST` to completion;
- history:  the largest history of the Broadcast workflow's runs (target under 10,000
            events) and how many times it continued as new;
- memory:   the peak resident memory of the worker, the sandbox and this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from benchmarks._database import throwaway_database
from benchmarks._stack import TROPA, _stop, _wait_http, free_port, temporal_server
from tropa.channels.base import OutgoingMessage
from tropa.channels.catalog import build_adapters
from tropa.dev_secrets import SECRETS
from tropa.services import broadcasts
from tropa.settings import Settings, TemporalSettings
from tropa.store.broadcast_models import Broadcast
from tropa.store.db import make_engine, migrate, session_scope
from tropa.worker.devserver import register_search_attributes
from tropa.worker.temporal_client import connect

ADMIN = os.environ.get("TROPA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _seed(engine: sa.Engine, customers: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (id, first_name, email, phone_verified, email_verified, "
            "time_zone, locale, consents, tags, attributes, created_at, updated_at) "
            "SELECT 'c' || lpad(i::text, 8, '0'), 'Anna', 'c' || i || '@example.com', false, "
            "true, 'Europe/Moscow', 'ru', '{\"marketing\": {\"email\": true}}', '[\"bench\"]', "
            "'{}', :now, :now FROM generate_series(1, :n) AS i"), {"n": customers, "now": now})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def _calibrate(url: str, count: int) -> float:
    """The sandbox's accept rate through the email adapter, 8 calls in flight."""
    with httpx.Client(timeout=30) as client:
        settings = Settings()
        settings.providers.email_url = url
        adapter = build_adapters(settings, client)["email"]
        run = uuid.uuid4().hex[:8]

        def one(n: int) -> None:
            adapter.send(OutgoingMessage(
                idempotency_key=f"calibrate/{run}/{n}", channel="email", category="marketing",
                recipient=f"calibrate{n}@example.com", text="Hi", subject="Sale"))

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(count)))
        return count / (time.perf_counter() - start)


def _process(name: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """`tropa <name>` as a process of its own, its output in the work folder."""
    log = workdir / f"{name}.log"
    return subprocess.Popen([TROPA, name], env=env, stdin=subprocess.DEVNULL,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def _worker_polling(client: Client, queue: str) -> None:
    """Wait until `tropa worker` polls the queue, so its start-up is not timed."""
    request = DescribeTaskQueueRequest(namespace=client.namespace,
                                       task_queue=TaskQueue(name=queue))
    deadline = time.monotonic() + 120
    while not (await client.workflow_service.describe_task_queue(request)).pollers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker polls {queue} after 120 s")
        await asyncio.sleep(0.5)


def _peak_mb(pid: int | None = None) -> float:
    """A process's peak resident memory (VmHWM) in MB; this process's without a pid."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _state(engine: sa.Engine, broadcast_id: str) -> Broadcast:
    with session_scope(engine) as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        session.expunge(row)
        return row


async def _run(args: argparse.Namespace, url: str, workdir: Path) -> None:
    engine = make_engine(url)
    _seed(engine, args.customers, datetime.now(UTC))
    sandbox_port = free_port()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TROPA_DATA_DIR": str(workdir), "TROPA_DATABASE_URL": url,
           "TROPA_TEMPORAL_TASK_QUEUE": queue, "TROPA_LOG_LEVEL": "WARNING",
           "TROPA_SANDBOX_PORT": str(sandbox_port),
           "TROPA_PROVIDER_EMAIL_URL": f"http://127.0.0.1:{sandbox_port}",
           "TROPA_DELIVERY_RATES": "{}",
           **{secret.env: secrets.token_urlsafe(32) for secret in SECRETS}}
    with temporal_server(workdir, args.temporal) as address:
        env["TROPA_TEMPORAL_ADDRESS"] = address
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs += [_process(name, env, workdir) for name in ("sandbox", "worker")]
            sandbox = f"http://127.0.0.1:{sandbox_port}"
            _wait_http(f"{sandbox}/openapi.json", procs[0], workdir / "sandbox.log")
            temporal = TemporalSettings(address=address, task_queue=queue)
            client = await connect(temporal)
            await register_search_attributes(client)
            await _worker_polling(client, queue)
            accept = _calibrate(sandbox, args.calibrate)
            print(f"sandbox:  {accept:,.0f} emails/s accepted ({args.calibrate:,} through the "
                  "adapter, 8 in flight)")

            settings = Settings(temporal=temporal)
            settings.temporal.task_queue = queue
            began = time.perf_counter()
            row = await broadcasts.create(engine, client, settings, broadcasts.NewBroadcast(
                name="benchmark", channel="email", audience={"tag": "bench"},
                send={"channel": "email", "subject": "Sale",
                      "text": "{{ customer.first_name }}, -20% today"}))
            snapshot = None
            while True:
                state = _state(engine, row.id)
                if snapshot is None and state.snapshot_at is not None:
                    snapshot = time.perf_counter()
                if state.status in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.5)
            done = time.perf_counter()
            assert snapshot is not None and state.status == "completed", state.status
            n = state.recipients or 0
            send_rate = n / (done - snapshot)
            print(f"snapshot: {n:,} recipients in {snapshot - began:.1f} s = "
                  f"{n / (snapshot - began):,.0f} recipients/s")
            print(f"send:     {n:,} messages in {done - snapshot:.1f} s = {send_rate:,.0f} "
                  f"messages/s; {send_rate / accept:.2f} of the sandbox's rate (target 0.5)")
            print(f"total:    {n / (done - began):,.0f} recipients/s from POST to completion")
            # Visibility does not count events on every server: each run's history is read.
            lengths = []
            async for run in client.list_workflows(f'WorkflowId = "{row.workflow_id}"'):
                history = await client.get_workflow_handle(
                    run.id, run_id=run.run_id).fetch_history()
                lengths.append(len(history.events))
            print(f"history:  largest {max(lengths):,} events over {len(lengths)} runs "
                  "(target under 10,000)")
            print(f"memory:   peak RSS worker {_peak_mb(procs[1].pid):,.0f} MB, sandbox "
                  f"{_peak_mb(procs[0].pid):,.0f} MB, benchmark {_peak_mb():,.0f} MB")
        finally:
            for proc in reversed(procs):
                _stop(proc)
    engine.dispose()


def main() -> None:
    """Parse the arguments, make the database, run, drop the database."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipients", "--customers", dest="customers", type=int, default=100_000,
                   help="customers in the base, each a recipient")
    p.add_argument("--calibrate", type=int, default=5_000)
    p.add_argument("--temporal", help="host:port of a running Temporal (default: a dev server)")
    args = p.parse_args()
    with throwaway_database(ADMIN, "tropa_bench") as (_, url), \
            tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        asyncio.run(_run(args, url, Path(tmp)))


if __name__ == "__main__":
    main()

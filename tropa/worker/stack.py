"""The whole stack in one process: worker, API and sandbox, plus the embedded Temporal."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import subprocess
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from tropa.api.main import create_app
from tropa.dev_secrets import use_development_settings
from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid
from tropa.logs import get_logger
from tropa.sandbox.app import Sandbox, create_sandbox_app
from tropa.services import journeys
from tropa.services.api_keys import SCOPES, ensure_key
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate, session_scope
from tropa.store.models import Journey
from tropa.worker.devserver import (
    check_ports_free,
    register_search_attributes,
    start_dev_server,
    wait_for_port,
)
from tropa.worker.example_series import declare_example_series
from tropa.worker.loyalty_schedule import ensure_expiry_schedule
from tropa.worker.schedules import ensure_schedules
from tropa.worker.temporal_client import connect
from tropa.worker.worker import build_workers

log = get_logger("stack")


def open_database(settings: Settings) -> sa.Engine:
    """Migrate and open the configured database (SQLite in the data dir by default)."""
    url = settings.database_url()
    migrate(url)
    return make_engine(url)


def development_key(settings: Settings, engine: sa.Engine) -> str:
    """The development API key, made once and kept in the data dir."""
    path = settings.data_dir / "dev-api-key"
    if path.exists():
        plain = path.read_text().strip()
    else:
        plain = f"tropa_dev_{secrets.token_urlsafe(24)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plain + "\n")
        path.chmod(0o600)
    with session_scope(engine) as session:
        ensure_key(session, "development", plain, list(SCOPES))
    return plain


def publish_examples(engine: sa.Engine, folder: Path) -> list[str]:
    """Publish the journeys in `folder` that Tropa does not have yet.

    A journey already stored is left as it is: a marketer may have paused it or published
    a newer version, and a restart must not undo that."""
    published = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            with session_scope(engine) as session:
                name = compile_journey(path.read_text(), str(path)).journey
                if session.get(Journey, name) is not None:
                    continue
                row = journeys.create_version(session, path.read_text(), str(path))
                journeys.publish(session, row.journey, row.version)
                published.append(f"{row.journey}@{row.version}")
        except JourneyInvalid as exc:
            log.error("example_invalid", file=str(path), problems=len(exc.problems))
            print(exc)
    return published


def server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server that leaves signal handling to the stack."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    # uvicorn would take SIGINT for itself and re-raise it after its own shutdown; the
    # stack stops every part in order instead.
    srv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return srv


async def run_stack(settings: Settings, examples: Path | None) -> None:
    """Start everything, print where it is, and run until Ctrl-C."""
    use_development_settings(settings)
    temporal_proc: subprocess.Popen[bytes] | None = None
    tcfg = settings.temporal
    check_ports_free(stack_ports(settings))
    if not tcfg.address:
        temporal_proc = start_dev_server(settings.data_dir / "temporal.db", tcfg.dev_port,
                                         tcfg.dev_ui_port)
    try:
        if temporal_proc is not None:
            await wait_for_port("127.0.0.1", tcfg.dev_port, proc=temporal_proc)
        client: Client = await connect(tcfg)
        await register_search_attributes(client)
        await ensure_schedules(client, tcfg.task_queue)
        engine = open_database(settings)
        key = development_key(settings, engine)
        if examples:
            declare_example_series(engine, examples)
        published = publish_examples(engine, examples) if examples else []
        if not settings.delivery.receipts_base_url:
            # The sandbox posts delivery receipts back to this API, as a provider would.
            settings.delivery.receipts_base_url = f"http://{settings.api.host}:{settings.api.port}"
        # The sandbox on this machine is the one internal address webhooks may call here.
        settings.webhook.allowed_hosts.append(f"{settings.sandbox.host}:{settings.sandbox.port}")
        workers = build_workers(client, settings, engine)
        await ensure_expiry_schedule(client, settings)
        api = server(create_app(settings, engine, client), settings.api.host, settings.api.port)
        # The sandbox keeps what it accepted in the data folder, so a whole-stack crash and
        # restart can still be checked for exactly-once.
        box = Sandbox(settings.delivery.receipts_secret.get_secret_value(),
                      store=settings.data_dir / "sandbox-messages.jsonl")
        sandbox = server(create_sandbox_app(box), settings.sandbox.host, settings.sandbox.port)
        _banner(settings, key, published)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [*(asyncio.create_task(w.run()) for w in workers), asyncio.create_task(api.serve()),
                 asyncio.create_task(sandbox.serve())]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        print("\nStopping Tropa ...", flush=True)
        api.should_exit = sandbox.should_exit = True
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if task is not stopped and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        if temporal_proc is not None:
            temporal_proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                temporal_proc.wait(timeout=15)
            if temporal_proc.poll() is None:
                temporal_proc.kill()


def stack_ports(settings: Settings) -> dict[str, tuple[str, int]]:
    """The ports `tropa dev` listens on, by the setting that moves each."""
    ports = {"TROPA_API_PORT": ("the API", settings.api.port),
             "TROPA_SANDBOX_PORT": ("the sandbox providers", settings.sandbox.port)}
    if not settings.temporal.address:
        ports["TROPA_TEMPORAL_DEV_PORT"] = ("the Temporal dev server", settings.temporal.dev_port)
        ports["TROPA_TEMPORAL_DEV_UI_PORT"] = ("the Temporal Web UI",
                                              settings.temporal.dev_ui_port)
    return ports


def _banner(settings: Settings, key: str, published: list[str]) -> None:
    api = f"http://{settings.api.host}:{settings.api.port}"
    lines = [
        "",
        "Tropa is running. Ctrl-C stops everything.",
        f"  API docs (OpenAPI):   {api}/docs",
        f"  Temporal Web UI:      {settings.temporal.web_ui()}",
        f"  Sandbox providers:    http://{settings.sandbox.host}:{settings.sandbox.port}"
        "/sandbox/messages",
        f"  Development API key:  {key}   (header X-API-Key)",
        f"  Database:             {settings.database_url().split('@')[-1]}",
        f"  Published journeys:   {', '.join(published) or 'none'}",
        "",
    ]
    print("\n".join(lines), flush=True)

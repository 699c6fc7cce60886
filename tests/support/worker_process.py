"""A worker in a process of its own (`python -m tropa.delivery`), killed with SIGKILL, and the
exact count of provider calls that each kill makes Tropa repeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from tests.conftest import SandboxServer
from tests.support.secrets import production_secrets
from tests.support.waiting import eventually
from tropa.channels.base import OutgoingMessage
from tropa.delivery.store import Delivery


def worker_env(env: WorkflowEnvironment, engine: sa.Engine, sandbox: SandboxServer,
               task_queue: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process on this server, database and sandbox; quick
    retries, so a killed worker's activities are taken up again within seconds."""
    return {**os.environ,
            "TROPA_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TROPA_TEMPORAL_TASK_QUEUE": task_queue,
            "TROPA_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "TROPA_PROVIDER_SMS_URL": sandbox.url, "TROPA_PROVIDER_EMAIL_URL": sandbox.url,
            "TROPA_DELIVERY_DELIVER_TIMEOUT_SECONDS": "3",
            "TROPA_DELIVERY_RETRY_INITIAL_SECONDS": "0.5",
            "TROPA_DELIVERY_RETRY_MAX_INTERVAL_SECONDS": "2",
            # Runs of a killed worker resume on the next one within a second.
            "TROPA_TEMPORAL_STICKY_TIMEOUT_SECONDS": "1",
            "TROPA_LOG_LEVEL": "WARNING", **production_secrets(), **extra}


def provider_keys(key: str) -> set[str]:
    """The forms a provider sees a Tropa key in: as is, or hashed (Vonage `client-ref`)."""
    ref = OutgoingMessage(idempotency_key=key, channel="", category="", recipient="",
                          text="").provider_ref()
    return {key, ref}


class Workers:
    """Worker processes started, killed and stopped; and what each kill left in flight.

    A call is repeated exactly when the provider got it but Tropa had not committed the
    provider's answer when the worker died: the retried activity calls again under the same
    key (and the provider answers with the same id). So, per key, the calls seen at the end
    are the calls seen at the last kill that found it uncommitted, plus the one repeat; a key
    no kill found uncommitted is called once."""

    def __init__(self, env: dict[str, str], log: Path, engine: sa.Engine,
                 sandbox: SandboxServer) -> None:
        self._env = env
        self._log = log
        self._engine = engine
        self._sandbox = sandbox
        self.procs: list[subprocess.Popen[bytes]] = []
        self.expected_calls: dict[str, int] = {}
        self.in_flight_at_kills: list[int] = []

    def start(self) -> None:
        with self._log.open("ab") as out:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "tropa.delivery"], env=self._env, stdout=out,
                stderr=subprocess.STDOUT))

    async def kill(self) -> None:
        """SIGKILL the running worker and note which provider calls it left uncommitted."""
        proc = self.procs[-1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        box = self._sandbox.box
        # Calls the dead worker had sent are answered by the provider all the same.
        await eventually(lambda: box.in_progress == 0, message="provider answered all calls")
        with box.lock:
            calls = Counter(c["key"] for c in box.calls)
        with Session(self._engine) as session:
            committed = set().union(*(provider_keys(d.provider_key) for d in session.exec(
                select(Delivery).where(col(Delivery.provider_message_id).is_not(None)))))
        uncommitted = {key: n for key, n in calls.items() if key not in committed}
        self.in_flight_at_kills.append(len(uncommitted))
        for key, n in uncommitted.items():
            self.expected_calls[key] = n + 1

    def calls_per_key(self) -> tuple[Counter[str], Counter[str]]:
        """(calls the provider got per key, calls the kills explain per key)."""
        with self._sandbox.box.lock:
            seen = Counter(c["key"] for c in self._sandbox.box.calls)
        expected = Counter({key: self.expected_calls.get(key, 1) for key in seen})
        return seen, expected

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

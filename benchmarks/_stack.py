"""The processes a benchmark runs against: Temporal dev server, Tropa worker and API.

Each runs as its own process, as in production, so the API, the worker and the benchmark's
own client do not share one interpreter lock.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tropa.dev_secrets import SECRETS
from tropa.worker.devserver import start_dev_server

TROPA = str(Path(sys.executable).parent / "tropa")


@dataclass
class Stack:
    """Where the parts listen."""

    temporal: str
    api: str
    task_queue: str
    database_url: str


def free_port() -> int:
    """A TCP port nothing listens on right now, on the loopback interface."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s; see {log}")


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Temporal did not listen on {port} in {timeout}s") from None
            time.sleep(0.2)


@contextmanager
def temporal_server(workdir: Path, address: str | None) -> Iterator[str]:
    """The given Temporal address, or a dev server of our own (SQLite WAL, search attributes)."""
    if address:
        yield address
        return
    port = free_port()
    proc = start_dev_server(workdir / "temporal.db", port, free_port())
    try:
        _wait_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextmanager
def tropa_processes(workdir: Path, temporal: str, task_queue: str) -> Iterator[Stack]:
    """`tropa worker` and `tropa api` on a fresh SQLite database, until the block ends."""
    database_url = f"sqlite:///{workdir / 'tropa.db'}"
    api_port = free_port()
    env = {
        **os.environ,
        "TROPA_DATA_DIR": str(workdir),
        "TROPA_DATABASE_URL": database_url,
        "TROPA_TEMPORAL_ADDRESS": temporal,
        "TROPA_TEMPORAL_TASK_QUEUE": task_queue,
        "TROPA_API_HOST": "127.0.0.1",
        "TROPA_API_PORT": str(api_port),
        # One INFO line per event would measure the terminal, not the engine.
        "TROPA_LOG_LEVEL": "WARNING",
        # Production processes refuse the development secrets; both share these.
        **{secret.env: secrets.token_urlsafe(32) for secret in SECRETS},
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([TROPA, "migrate"], env=env, check=True, capture_output=True)
        for name in ("worker", "api"):
            log = workdir / f"{name}.log"
            procs.append(subprocess.Popen([TROPA, name], env=env, stdin=subprocess.DEVNULL,
                                          stdout=log.open("wb"), stderr=subprocess.STDOUT))
        api = f"http://127.0.0.1:{api_port}"
        _wait_http(f"{api}/healthz", procs[1], workdir / "api.log")
        yield Stack(temporal=temporal, api=api, task_queue=task_queue,
                    database_url=database_url)
    finally:
        for proc in reversed(procs):
            _stop(proc)

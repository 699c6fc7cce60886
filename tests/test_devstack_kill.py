"""The dev stack survives being killed: no orphaned Temporal server, no silent port reuse,
and the sandbox remembers what it accepted across a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port, serve
from tests.support.waiting import eventually_sync
from tropa.sandbox.app import Sandbox, create_sandbox_app

TROPA = str(Path(sys.executable).parent / "tropa")
STARTS_WITHIN = 120.0
DIES_WITHIN = 15.0


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROPA_")}
    return {**env, "TROPA_DATA_DIR": str(data_dir), "TROPA_LOG_LEVEL": "WARNING",
            "TROPA_API_PORT": str(free_port()), "TROPA_SANDBOX_PORT": str(free_port()),
            "TROPA_TEMPORAL_DEV_PORT": str(free_port()),
            "TROPA_TEMPORAL_DEV_UI_PORT": str(free_port())}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is left


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# The test finds `tropa dev`'s Temporal child through /proc, which only Linux has; CI and
# the machines Tropa is developed on are Linux, so it runs everywhere it is expected to.
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_tropa_dev_takes_its_temporal_server_along(
        tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    env = _env(tmp_path / "data")
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen([TROPA, "dev", "--examples", ""], env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    started.append(dev)
    api_port = int(env["TROPA_API_PORT"])
    eventually_sync(lambda: _listening(api_port) or dev.poll() is not None,
                    timeout=STARTS_WITHIN, message="API up")
    assert dev.poll() is None, (tmp_path / "dev.log").read_text()
    temporal = [p for p in _children(dev.pid) if "temporal" in Path(f"/proc/{p}/cmdline")
                .read_bytes().decode(errors="replace")]
    assert len(temporal) == 1, _children(dev.pid)

    dev.send_signal(signal.SIGKILL)
    dev.wait(timeout=10)

    eventually_sync(lambda: not _alive(temporal[0]), timeout=DIES_WITHIN,
                    message="the Temporal child gone")
    temporal_port = int(env["TROPA_TEMPORAL_DEV_PORT"])
    eventually_sync(lambda: not _listening(temporal_port), timeout=DIES_WITHIN,
                    message="the Temporal port free")


def test_a_start_that_finds_its_port_taken_says_which_and_stops(
        tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    env = _env(tmp_path / "data")
    port = int(env["TROPA_TEMPORAL_DEV_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        dev = subprocess.Popen([TROPA, "dev", "--examples", ""], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(dev)
        out, err = dev.communicate(timeout=60)

    assert dev.returncode != 0
    text = (out + err).decode()
    assert f"port {port}" in text and "TROPA_TEMPORAL_DEV_PORT" in text, text
    assert "Tropa is running" not in text
    assert not (tmp_path / "data" / "temporal.db").exists()


def test_the_sandbox_remembers_accepted_messages_across_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "sandbox-messages.jsonl"
    body = {"from": "shop@example.com", "to": "anna@example.com", "subject": "Hi",
            "text": "Hello"}

    def post(url: str, key: str) -> str:
        answer = httpx.post(f"{url}/email/v1/messages", json=body, headers={
            "Authorization": "Bearer t", "Idempotency-Key": key})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["message_id"])

    with serve(create_sandbox_app(Sandbox(store=store))) as url:
        first = post(url, "k-1")
    # The process is gone (a crash, a restart); a new sandbox reads the same folder.
    with serve(create_sandbox_app(Sandbox(store=store))) as url:
        again = post(url, "k-1")
        other = post(url, "k-2")
        listed = httpx.get(f"{url}/sandbox/messages").json()

    assert again == first
    assert other != first
    assert [m["idempotency_key"] for m in listed] == ["k-1", "k-2"]

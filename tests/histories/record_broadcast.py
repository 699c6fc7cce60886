"""Record a Broadcast workflow history for the replay test.

Run after a deliberate, versioned change to the Broadcast workflow (`workflow.patched`):
    .venv/bin/python -m tests.histories.record_broadcast v2
A broadcast to 20 customers in pages of 7 with a 25 % holdout (snapshot, gated pages,
deliveries, completion, all in one run) runs on the time-skipping server with a real worker
and the sandbox provider; its history is saved as `broadcast_<tag>.json`. Saved histories
are never re-recorded.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.client import WorkflowHistory

from tests.support.broadcasts import add_customers, start, status_of, workers
from tests.support.servers import serve
from tests.support.temporal import time_skipping_server
from tests.support.waiting import eventually
from tropa.sandbox.app import Sandbox, create_sandbox_app
from tropa.settings import Settings
from tropa.store.db import make_engine, migrate

HERE = Path(__file__).parent


async def record(tag: str) -> Path:
    """Run the broadcast and save its history."""
    with tempfile.TemporaryDirectory() as folder, serve(create_sandbox_app(Sandbox())) as url:
        settings = Settings(data_dir=Path(folder))
        settings.providers.email_url = url
        settings.delivery.rates = {}
        settings.broadcasts.page_size = 7
        db_url = f"sqlite:///{Path(folder) / 'tropa.db'}"
        migrate(db_url)
        engine = make_engine(db_url)
        add_customers(engine, [f"c-{n:02d}" for n in range(20)])
        task_queue = f"replay-{uuid.uuid4()}"
        async with time_skipping_server() as env, workers(env, engine, settings, task_queue):
            broadcast = await start(env, engine, settings, task_queue, holdout=25)
            await eventually(lambda: status_of(engine, broadcast.id) == "completed",
                             message="broadcast completed", timeout=120)
            handle = env.client.get_workflow_handle(broadcast.workflow_id)
            history: WorkflowHistory = await handle.fetch_history()
        engine.dispose()
    path = HERE / f"broadcast_{tag}.json"
    path.write_text(history.to_json())
    return path


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m tests.histories.record_broadcast <tag>")
    print(asyncio.run(record(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])

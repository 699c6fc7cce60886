"""A worker process: the journey worker and every channel worker, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

from tropa.settings import Settings
from tropa.worker.schedules import ensure_journey_schedules, ensure_schedules
from tropa.worker.stack import open_database
from tropa.worker.temporal_client import connect
from tropa.worker.worker import build_workers


async def run_all(settings: Settings) -> None:
    """The journey worker and every channel worker, until SIGTERM or SIGINT."""
    settings.delivery.channel_queues = True  # this process serves the channel queues
    client = await connect(settings.temporal)
    await ensure_schedules(client, settings.temporal.task_queue, settings)
    engine = open_database(settings)
    await ensure_journey_schedules(client, engine, settings.temporal.task_queue)
    workers = build_workers(client, settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers))
    await asyncio.gather(*tasks, return_exceptions=True)

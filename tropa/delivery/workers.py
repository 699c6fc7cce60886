"""Channel workers: one per channel on `<queue>-<channel>`, each with the server-side rate
limit that caps that channel's mass messages for the whole system.

`max_task_queue_activities_per_second` is enforced by the Temporal server across every
worker polling the queue, so adding worker processes never raises the rate: at 20/s an
SMS broadcast to 100 000 customers takes at least 100 000 / 20 s, about 83 minutes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from tropa.activities.broadcast import BroadcastActivities
from tropa.activities.db_errors import DatabaseErrorsWithoutValues
from tropa.channels.base import ChannelAdapter
from tropa.channels.catalog import CHANNELS, build_adapters
from tropa.settings import Settings
from tropa.steps.registry import WorkerDeps
from tropa.steps.send import send_activity


def channel_workers(client: Client, settings: Settings, engine: sa.Engine, *, task_queue: str,
                    adapters: dict[str, ChannelAdapter] | None = None,
                    max_concurrent: int = 8) -> list[Worker]:
    """A worker for each channel's delivery queue."""
    # Every call a channel's activities can have in flight keeps its connection: a pool
    # smaller than that would close and reopen connections under a broadcast's load.
    in_flight = max_concurrent * settings.broadcasts.deliver_concurrency
    http = httpx.Client(timeout=settings.providers.timeout_seconds,
                        limits=httpx.Limits(max_connections=None,
                                            max_keepalive_connections=in_flight))
    deps = WorkerDeps(engine=engine, settings=settings, http=http,
                      adapters=adapters if adapters is not None else build_adapters(settings, http))
    send = send_activity(deps)
    # Broadcasts deliver on the same queues, under the same limits as journeys.
    broadcast_deliver = BroadcastActivities(engine, deps.adapters, settings).deliver
    workers = []
    for channel in CHANNELS:
        rate = settings.delivery.rates.get(channel)
        workers.append(Worker(
            client, task_queue=f"{task_queue}-{channel}", activities=[send, broadcast_deliver],
            activity_executor=ThreadPoolExecutor(max_workers=max_concurrent),
            max_concurrent_activities=max_concurrent,
            interceptors=[DatabaseErrorsWithoutValues()],
            max_task_queue_activities_per_second=rate if rate and rate > 0 else None))
    return workers

"""The worker: JourneyRun plus every activity of the registry, on Tropa's task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from tropa.activities.db_errors import DatabaseErrorsWithoutValues
from tropa.activities.interpreter import interpreter_activities
from tropa.activities.loyalty_expiry import ExpiryActivities
from tropa.activities.segments import SegmentActivities
from tropa.channels.base import ChannelAdapter
from tropa.channels.catalog import build_adapters
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings
from tropa.steps.registry import WorkerDeps, log_plugins, registry
from tropa.workflows.journey_run import JourneyRun
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep
from tropa.workflows.segments_daily import SegmentsDaily


def build_worker(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    *,
    task_queue: str | None = None,
    adapters: dict[str, ChannelAdapter] | None = None,
    max_concurrent_activities: int = 32,
) -> Worker:
    """A worker for journeys; activities are synchronous and run in a thread pool."""
    http = httpx.Client(timeout=settings.providers.timeout_seconds)
    deps = WorkerDeps(
        engine=engine,
        settings=settings,
        http=http,
        adapters=adapters if adapters is not None else build_adapters(settings, http),
    )
    queue = task_queue or settings.temporal.task_queue
    # Sweeps route the events of what they change (segment moves) like the API does.
    router = EventRouter(engine, client, JourneyCatalogue(engine), queue)
    return Worker(
        client,
        task_queue=queue,
        workflows=[JourneyRun, SegmentsDaily, LoyaltyExpirySweep],
        activities=[*registry().activities(deps), *interpreter_activities(engine, settings),
                    SegmentActivities(engine, router).time_passing,
                    *_sweep_activities(engine, settings)],
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.temporal.sticky_timeout_seconds),
        interceptors=[DatabaseErrorsWithoutValues()],
    )


def _sweep_activities(engine: sa.Engine, settings: Settings) -> list[Callable[..., Any]]:
    sweep = ExpiryActivities(engine, settings)
    return [sweep.burn, sweep.announce]


def build_workers(client: Client, settings: Settings, engine: sa.Engine, *,
                  task_queue: str | None = None) -> list[Worker]:
    """Everything one worker process serves: journeys, and each channel's delivery queue
    when deliveries go through channel queues (the default)."""
    from tropa.delivery.workers import channel_workers

    queue = task_queue or settings.temporal.task_queue
    log_plugins(registry())
    workers = [build_worker(client, settings, engine, task_queue=queue)]
    if settings.delivery.channel_queues:
        workers += channel_workers(client, settings, engine, task_queue=queue)
    return workers


@asynccontextmanager
async def workers_running(client: Client, settings: Settings, engine: sa.Engine, *,
                          task_queue: str | None = None) -> AsyncIterator[list[Worker]]:
    """Run `build_workers` for the length of the block."""
    async with AsyncExitStack() as stack:
        workers = build_workers(client, settings, engine, task_queue=task_queue)
        for worker in workers:
            await stack.enter_async_context(worker)
        yield workers

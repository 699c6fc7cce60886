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

from tropa.activities.broadcast import BroadcastActivities
from tropa.activities.db_errors import DatabaseErrorsWithoutValues
from tropa.activities.interpreter import interpreter_activities
from tropa.activities.loyalty_expiry import ExpiryActivities
from tropa.activities.schedule_fire import ScheduleFireActivities
from tropa.activities.segments import SegmentActivities
from tropa.activities.time_triggers import TimeTriggerActivities
from tropa.channels.base import ChannelAdapter
from tropa.channels.catalog import build_adapters
from tropa.delivery.workers import channel_workers
from tropa.dsl.plan import EventIn
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.services.loyalty_events import emit
from tropa.settings import Settings
from tropa.steps.builtin import registry
from tropa.steps.registry import WorkerDeps, log_plugins
from tropa.workflows.broadcast import Broadcast
from tropa.workflows.journey_run import JourneyRun
from tropa.workflows.loyalty_expiry import LoyaltyExpirySweep
from tropa.workflows.schedule_fire import ScheduleFire
from tropa.workflows.segments_daily import SegmentsDaily
from tropa.workflows.time_triggers import TimeTriggersHourly


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
    queue = task_queue or settings.temporal.task_queue
    # Sweeps and steps route the events of what they change (segment moves, level changes)
    # like the API does.
    router = EventRouter(engine, client, JourneyCatalogue(engine), queue)

    async def emit_events(events: list[EventIn]) -> None:
        await emit(router, events)

    deps = WorkerDeps(
        engine=engine,
        settings=settings,
        http=http,
        adapters=adapters if adapters is not None else build_adapters(settings, http),
        emit_events=emit_events,
    )
    broadcasts = BroadcastActivities(engine, deps.adapters, settings)
    return Worker(
        client,
        task_queue=queue,
        workflows=[JourneyRun, SegmentsDaily, LoyaltyExpirySweep, TimeTriggersHourly,
                   ScheduleFire, Broadcast],
        activities=[*registry().activities(deps), *interpreter_activities(engine, settings),
                    SegmentActivities(engine, router).time_passing,
                    TimeTriggerActivities(engine, router).sweep,
                    ScheduleFireActivities(engine, router, settings.triggers).fire_page,
                    *_sweep_activities(engine, settings),
                    broadcasts.snapshot, broadcasts.prepare_page, broadcasts.deliver,
                    broadcasts.finish],
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

"""The worker: JourneyRun plus every activity of the registry, on Tropa's task queue."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from tropa.activities.interpreter import interpreter_activities
from tropa.channels.base import ChannelAdapter
from tropa.channels.catalog import build_adapters
from tropa.settings import Settings
from tropa.steps.registry import WorkerDeps, registry
from tropa.workflows.journey_run import JourneyRun


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
    return Worker(
        client,
        task_queue=task_queue or settings.temporal.task_queue,
        workflows=[JourneyRun],
        activities=[*registry().activities(deps), *interpreter_activities(engine)],
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
    )

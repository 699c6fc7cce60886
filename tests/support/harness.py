"""A journey harness: a real Worker on a fresh task queue, the product's event router."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.journeys import publish_yaml
from tropa.dsl.plan import EventIn, RunStatus
from tropa.services.events import EventRouter, Routed
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings
from tropa.worker.worker import workers_running
from tropa.workflows.journey_run import JourneyRun


class Harness:
    """Publishes journeys and fires events the way the API does."""

    def __init__(self, env: WorkflowEnvironment, engine: sa.Engine, router: EventRouter,
                 catalogue: JourneyCatalogue, task_queue: str) -> None:
        self.env = env
        self.task_queue = task_queue
        self.client = env.client
        self.engine = engine
        self.router = router
        self.catalogue = catalogue
        self._n = 0
        self.started: set[str] = set()

    def publish(self, text: str) -> str:
        version = publish_yaml(self.engine, text)
        self.catalogue.invalidate()
        return version

    async def fire(self, type_: str, customer_id: str, data: dict[str, Any] | None = None,
                   event_id: str | None = None) -> Routed:
        self._n += 1
        routed = await self.router.ingest(EventIn(
            event_id=event_id or f"evt-{self._n}-{type_}", type=type_, customer_id=customer_id,
            occurred_at=datetime.now(UTC), data=data or {}))
        self.started.update(routed.started)
        return routed

    async def end_leftovers(self) -> None:
        """Terminate runs a test left waiting: on the shared time-skipping server a run
        without a worker would hold the clock back for every later test."""
        for workflow_id in self.started:
            with contextlib.suppress(RPCError):
                description = await self.handle(workflow_id).describe()
                if description.status == WorkflowExecutionStatus.RUNNING:
                    await self.handle(workflow_id).terminate(reason="test finished")

    def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id)

    async def finish(self, workflow_id: str) -> RunStatus:
        """The run's final status; on the time-skipping server, time runs fast meanwhile."""
        handle = self.client.get_workflow_handle(workflow_id, result_type=RunStatus)
        unlocked = getattr(self.env, "time_skipping_unlocked", None)
        if unlocked is None:
            return await handle.result()
        async with unlocked():
            return await handle.result()

    async def ended(self, workflow_id: str, timeout: float = 60.0) -> RunStatus:
        """The run's status once it has ended, polled without asking the test server to skip
        time (its automatic skipping can be held back by an activity a previous test left
        in flight); tests move time with `env.sleep` instead."""
        from tests.support.waiting import eventually

        async def done() -> RunStatus | None:
            try:
                status = await self.status(workflow_id)
            except RPCError:
                return None  # a busy worker did not answer the query in time: ask again
            return status if status.state != "running" else None
        return await eventually(done, timeout=timeout, message=f"{workflow_id} ended")

    async def at(self, workflow_id: str, step_id: str) -> None:
        """Wait until the run is at `step_id`."""
        from tests.support.waiting import eventually

        async def there() -> bool:
            try:
                return (await self.status(workflow_id)).current_step == step_id
            except RPCError:
                return False
        await eventually(there, message=f"{workflow_id} at {step_id}")

    async def status(self, workflow_id: str) -> RunStatus:
        return await self.handle(workflow_id).query(JourneyRun.status)  # type: ignore[no-any-return]


@asynccontextmanager
async def running(env: WorkflowEnvironment, engine: sa.Engine, settings: Settings,
                  task_queue: str) -> AsyncIterator[Harness]:
    """The journey and channel workers polling `task_queue` for the length of the block."""
    catalogue = JourneyCatalogue(engine, max_age_seconds=0)
    router = EventRouter(engine, env.client, catalogue, task_queue)
    async with workers_running(env.client, settings, engine, task_queue=task_queue):
        harness = Harness(env, engine, router, catalogue, task_queue)
        try:
            yield harness
        finally:
            await harness.end_leftovers()

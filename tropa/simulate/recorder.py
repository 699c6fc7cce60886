"""Every workflow execution a simulation starts, recorded by a Temporal client interceptor.

The router, the sweeps and the activities all start runs through the simulation's client, so
this sees each of them, including a second execution under a workflow id whose first one has
ended (a cart updated again after its run completed): the server's "describe" would show only
the latest.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)


class StartedRuns(Interceptor):
    """Collects (workflow id, run id) of every started execution, in start order."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """Wrap the client's calls."""
        return _Recording(next, self.runs)


class _Recording(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, runs: list[tuple[str, str]]) -> None:
        super().__init__(next)
        self._runs = runs

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        handle = await super().start_workflow(input)
        run_id = handle.first_execution_run_id or handle.result_run_id
        if run_id:
            self._runs.append((handle.id, run_id))
        return handle

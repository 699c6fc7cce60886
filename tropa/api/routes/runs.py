"""Runs: one customer's trip through a journey, read from Temporal."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from temporalio.service import RPCError, RPCStatusCode

from tropa.api.deps import require
from tropa.dsl.plan import RunStatus
from tropa.workflows.journey_run import JourneyRun

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("/{workflow_id:path}", response_model=RunStatus,
            dependencies=[Depends(require("read"))])
async def get_run(workflow_id: str, request: Request) -> RunStatus:
    """A run's current step and every step done, with times and outcomes."""
    handle = request.app.state.temporal.get_workflow_handle(workflow_id)
    try:
        return await handle.query(JourneyRun.status)  # type: ignore[no-any-return]
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"run {workflow_id!r} does not exist") from exc
        raise

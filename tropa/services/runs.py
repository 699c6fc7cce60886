"""Runs as Temporal sees them: lists and counts from visibility, one run's full status."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from tropa.dsl.plan import RunStatus, StepRecord
from tropa.store.db import session_scope
from tropa.store.models import Message
from tropa.workflows import search_attributes as sa_keys

STATES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}
QUERY_TIMEOUT = timedelta(seconds=3)


class RunNotFound(LookupError):
    """No run with that workflow id."""


class RunClosed(ValueError):
    """The run has ended already, so it cannot be cancelled."""


class BadPageToken(ValueError):
    """A page token Temporal does not accept."""


def literal(value: str) -> str:
    """A value quoted for a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def visibility_query(*, journey: str | None = None, customer: str | None = None,
                     version: str | None = None, running: bool | None = None) -> str:
    """A list filter over the Tropa search attributes, as typed in the Web UI."""
    parts = ["WorkflowType='JourneyRun'"]
    for key, value in ((sa_keys.JOURNEY, journey), (sa_keys.CUSTOMER, customer),
                       (sa_keys.VERSION, version)):
        if value is not None:
            parts.append(f"{key.name}={literal(value)}")
    if running is not None:
        parts.append("ExecutionStatus" + ("=" if running else "!=") + "'Running'")
    return " AND ".join(parts)


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The run's page in the Temporal Web UI."""
    return (f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}")


@dataclass
class RunInfo:
    """A run as listed: ids, where it is, when it started and ended."""

    workflow_id: str
    run_id: str
    journey: str | None
    version: str | None
    customer_id: str | None
    current_step: str | None
    state: str
    started_at: datetime | None
    closed_at: datetime | None


@dataclass
class RunDetail:
    """One run: its listing, its steps (when the query answered) and the messages it sent."""

    info: RunInfo
    steps: list[StepRecord] | None
    messages: list[Message] = field(default_factory=list)


def info_of(wf: WorkflowExecution) -> RunInfo:
    """A listed execution as RunInfo."""
    attrs = wf.typed_search_attributes
    return RunInfo(
        workflow_id=wf.id, run_id=wf.run_id, journey=attrs.get(sa_keys.JOURNEY),
        version=attrs.get(sa_keys.VERSION), customer_id=attrs.get(sa_keys.CUSTOMER),
        current_step=attrs.get(sa_keys.STEP) if wf.status == WorkflowExecutionStatus.RUNNING
        else None,
        state=STATES.get(wf.status, "running") if wf.status else "running",
        started_at=wf.start_time, closed_at=wf.close_time)


async def list_runs(client: Client, query: str, *, page_size: int,
                    page_token: bytes | None) -> tuple[list[RunInfo], bytes | None]:
    """One page of runs matching `query`, newest first, and the next page's token."""
    pages = client.list_workflows(query, page_size=page_size, next_page_token=page_token)
    try:
        await pages.fetch_next_page()
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise BadPageToken(exc.message) from exc
        raise
    return [info_of(wf) for wf in pages.current_page or []], pages.next_page_token or None


async def count_by_version(client: Client, journey: str,
                           versions: list[str]) -> dict[str, tuple[int, int]]:
    """(running, finished) per version, from visibility."""

    async def one(version: str) -> tuple[int, int]:
        counted = await client.count_workflows(
            visibility_query(journey=journey, version=version) + " GROUP BY ExecutionStatus")
        running = sum(g.count for g in counted.groups if "Running" in g.group_values)
        return running, counted.count - running

    totals = await asyncio.gather(*(one(v) for v in versions))
    return dict(zip(versions, totals, strict=True))


async def run_detail(client: Client, engine: sa.Engine, workflow_id: str) -> RunDetail:
    """A run's listing, its steps and its messages; NOT_FOUND becomes RunNotFound."""
    handle = client.get_workflow_handle(workflow_id, result_type=RunStatus)
    desc = await _describe(handle, workflow_id)
    info = info_of(desc)
    status: RunStatus | None = None
    try:
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            # The result is in the history: no worker needed to read it.
            status = await handle.result(rpc_timeout=QUERY_TIMEOUT)
        else:
            status = await handle.query("status", result_type=RunStatus,
                                        rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
        # No worker answered in time: the listing from visibility is still worth showing.
        status = None
    if status is not None:
        info.current_step = status.current_step
        if info.state in ("running", "completed"):
            info.state = status.state
    # A run that continued as new or was restarted names its key in its status.
    key = status.run_key if status is not None and status.run_key else desc.run_id
    messages = await run_in_threadpool(_messages, engine, workflow_id, key)
    return RunDetail(info=info, steps=status.steps if status else None, messages=messages)


async def _describe(handle: WorkflowHandle[Any, Any], workflow_id: str
                    ) -> WorkflowExecutionDescription:
    """The run's description; NOT_FOUND becomes RunNotFound naming the run."""
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(f"run {workflow_id!r} does not exist") from exc
        raise


def _messages(engine: sa.Engine, workflow_id: str, run_id: str) -> list[Message]:
    # Idempotency keys start with workflow id and first run id: a restarted journey's
    # earlier runs share the workflow id but not the run id.
    prefix = f"{workflow_id}/{run_id}/"
    with session_scope(engine) as session:
        rows = session.exec(select(Message).where(
            Message.workflow_id == workflow_id,
            col(Message.idempotency_key).startswith(prefix, autoescape=True),
        ).order_by(col(Message.created_at), col(Message.id)))
        return list(rows)


async def cancel(client: Client, workflow_id: str) -> RunInfo:
    """Ask a running run to stop; RunClosed if it has ended already."""
    handle = client.get_workflow_handle(workflow_id)
    desc = await _describe(handle, workflow_id)
    info = info_of(desc)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        raise RunClosed(f"run {workflow_id!r} has ended already ({info.state})")
    await handle.cancel()
    return info

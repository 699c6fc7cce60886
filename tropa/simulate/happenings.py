"""What a simulation did, read back from where it really happened, never from the plan:
- runs and steps: every execution the simulation started (recorded by `recorder`), its
  continue-as-new chain (found through the histories) and the `status` query of each run,
  which replays its history;
- messages: the message log (`messages`), with the status the delivery left;
- loyalty: the ledger's operations with the balance after each, and the coupons issued.

Each happening is a JSON object with `at` (UTC ISO 8601) and `kind`; the list is in time order.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from tropa.clock import ensure_aware
from tropa.dsl.plan import RunStatus
from tropa.store.loyalty_models import (
    Coupon,
    CouponSeries,
    LoyaltyAccount,
    LoyaltyBucket,
    LoyaltyEntry,
)
from tropa.store.loyalty_models import LoyaltyOperation as Op
from tropa.store.models import Message
from tropa.store.task_models import Task

Happening = dict[str, Any]
MESSAGE_STATUS = {"accepted": "delivered", "delivered": "delivered",
                  "sent_unconfirmed": "delivered", "suppressed": "suppressed"}
OPERATION = {"accrual": "accrue", "write_off": "write_off", "expiry": "expire",
             "cancel": "cancel"}
RANK = {"run_started": 0, "step": 1, "message": 2, "loyalty": 2, "task": 2, "run_ended": 3}
END = 10**6  # sorts after every step of a run
MAX_CHAIN = 10_000  # runs of one execution read back, far beyond any simulated span


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a `Z`, always to the millisecond (the server's precision), so the
    texts sort as the moments do."""
    utc = ensure_aware(moment).astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def collect(client: Client, engine: sa.Engine, customer_id: str,
                  started: list[tuple[str, str]]) -> list[Happening]:
    """Every happening of the simulation, in time order; `started` are the executions the
    simulation started (workflow id, run id), journey runs and sweeps alike."""
    found: list[tuple[tuple[Any, ...], Happening]] = []
    steps: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
    executions = [(w, r) for w, r in dict.fromkeys(started) if w.startswith("journey/")]
    runs = {w for w, _ in executions}
    for workflow_id, first_run in executions:
        for key, happening in await _runs(client, workflow_id, first_run):
            found.append((key, happening))
            if happening["kind"] == "step":
                steps.setdefault((workflow_id, happening["step"]), []).append(
                    (key[0], key[2]))
    rows = await asyncio.to_thread(_ledger_and_messages, engine, customer_id, runs)
    for at, happening in rows:
        index = _step_index(steps, happening.get("run"), happening.get("step"), at)
        found.append(((at, happening.get("run") or "~", index, RANK[happening["kind"]]),
                      happening))
    found.sort(key=lambda item: item[0])
    return [h for _, h in found]


def _step_index(steps: dict[tuple[str, str], list[tuple[datetime, int]]], run: str | None,
                step: str | None, at: datetime) -> int:
    """The index of the step record a message or operation belongs to, for tie-breaking."""
    if run is None or step is None:
        return END - 1
    started = [index for moment, index in steps.get((run, step), []) if moment <= at]
    return max(started) if started else END - 1


async def _chain(client: Client, workflow_id: str, first_run: str) -> list[str]:
    """The run ids of one execution, from its first run on, following continue-as-new."""
    chain: list[str] = []
    run_id: str | None = first_run
    while run_id and len(chain) < MAX_CHAIN:
        chain.append(run_id)
        following = None
        async for event in client.get_workflow_handle(
                workflow_id, run_id=run_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                following = event.workflow_execution_continued_as_new_event_attributes\
                    .new_execution_run_id or None
        run_id = following
    return chain


async def _first_task(client: Client, workflow_id: str, run_id: str) -> datetime | None:
    """When the run first ran (after a start delay): its first workflow task's start."""
    async for event in client.get_workflow_handle(
            workflow_id, run_id=run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return event.event_time.ToDatetime().replace(tzinfo=UTC)
    return None


async def _runs(client: Client, workflow_id: str,
                first_run: str) -> list[tuple[tuple[Any, ...], Happening]]:
    """run_started, step and run_ended happenings of one execution of `workflow_id` (a
    restart by a new trigger continues it as new, so one execution may hold several runs).
    Each key's third part is the happening's place in the execution: at the same moment,
    a run's end comes before the next run's start, a step before the next step."""
    out: list[tuple[tuple[Any, ...], Happening]] = []
    seen: set[tuple[str, datetime]] = set()
    fresh = True
    for run_id in await _chain(client, workflow_id, first_run):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        description = await handle.describe()
        status: RunStatus = await handle.query("status", result_type=RunStatus)
        if fresh:
            began = await _first_task(client, workflow_id, run_id) or description.start_time
            out.append(((began, workflow_id, len(out), RANK["run_started"]), {
                "at": iso(began), "kind": "run_started", "run": workflow_id,
                "journey": status.journey, "version": status.version}))
        for record in status.steps:
            if (record.step_id, record.started_at) in seen:
                continue  # carried over by continue-as-new
            seen.add((record.step_id, record.started_at))
            happening: Happening = {
                "at": iso(record.started_at), "kind": "step", "run": workflow_id,
                "step": record.step_id, "type": record.type, "outcome": record.outcome,
                "detail": record.detail,
                "finished_at": iso(record.finished_at) if record.finished_at else None}
            out.append(((record.started_at, workflow_id, len(out), RANK["step"]), happening))
        closed = description.status != WorkflowExecutionStatus.RUNNING
        # A run continued as new to keep its history small goes on in the next one; one that
        # ended (or was restarted by a new trigger) has a final state.
        fresh = closed and status.state != "running"
        if fresh:
            # The last step's end is the run's own clock; a restarted run's close time comes
            # after its successor has begun.
            last = status.steps[-1].finished_at if status.steps else None
            ended = last or description.close_time or description.start_time
            assert ended is not None
            out.append(((ended, workflow_id, len(out), RANK["run_ended"]), {
                "at": iso(ended), "kind": "run_ended", "run": workflow_id,
                "state": status.state, "reason": _reason(status)}))
    return out


def _reason(status: RunStatus) -> str:
    """Why a run ended, as its status tells."""
    if status.state == "completed":
        return "all steps done"
    last = status.steps[-1] if status.steps else None
    if last is None:
        return status.state
    detail = last.detail.removeprefix("then ")
    if "then " in detail:
        detail = detail.rsplit("then ", 1)[1]
    return detail or f"{last.outcome} at step {last.step_id}"


def _ledger_and_messages(engine: sa.Engine, customer_id: str,
                         runs: set[str]) -> list[tuple[datetime, Happening]]:
    out: list[tuple[datetime, Happening]] = []
    m = Message.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        for row in conn.execute(sa.select(m).where(m.customer_id == customer_id)
                                .order_by(m.id)).mappings():
            status = MESSAGE_STATUS.get(row["status"], "cancelled")
            at = ensure_aware(row["created_at"])  # when the send went out (the first attempt)
            happening: Happening = {
                "at": iso(at), "kind": "message", "run": row["workflow_id"],
                "step": row["step_id"], "channel": row["channel"], "text": row["text"],
                "status": status, "provider_status": row["status"]}
            if status == "delivered":
                happening["delivered_at"] = iso(row["updated_at"])
            if row["subject"]:
                happening["subject"] = row["subject"]
            if row["reason"]:
                happening["reason"] = row["reason"]
            out.append((at, happening))
        out += _ledger(conn, customer_id, runs)
        t = Task.__table__.c  # type: ignore[attr-defined]
        for row in conn.execute(sa.select(t).where(t.customer_id == customer_id)
                                .order_by(t.id)).mappings():
            at = ensure_aware(row["created_at"])
            out.append((at, {
                "at": iso(at), "kind": "task", "run": row["workflow_id"], "step": row["step_id"],
                "assignee": row["assignee"], "text": row["text"],
                "due_at": iso(row["due_at"]) if row["due_at"] else None}))
    return out


def _ledger(conn: sa.Connection, customer_id: str,
            runs: set[str]) -> list[tuple[datetime, Happening]]:
    """Each operation with the account's balance after it; each coupon issued."""
    ops, entries = Op.__table__.c, LoyaltyEntry.__table__.c  # type: ignore[attr-defined]
    accounts = LoyaltyAccount.__table__.c  # type: ignore[attr-defined]
    buckets = LoyaltyBucket.__table__.c  # type: ignore[attr-defined]
    rows = conn.execute(
        sa.select(ops.id, ops.kind, ops.amount, ops.reason, ops.source, ops.created_at,
                  sa.select(sa.func.max(buckets.expires_at))
                  .where(buckets.operation_id == ops.id, ops.kind == "accrual")
                  .scalar_subquery().label("expires_at"),
                  accounts.kind.label("account"),
                  sa.select(sa.func.coalesce(sa.func.sum(entries.amount), 0))
                  .where(entries.account_id == ops.account_id, entries.operation_id <= ops.id)
                  .scalar_subquery().label("balance"))
        .join(LoyaltyAccount.__table__, accounts.id == ops.account_id)  # type: ignore[attr-defined]
        .where(ops.customer_id == customer_id).order_by(ops.id)).mappings().all()
    out: list[tuple[datetime, Happening]] = []
    balances: dict[str, int] = {}
    for row in rows:
        at = ensure_aware(row["created_at"])
        source = row["source"] or {}
        balances[row["account"]] = int(row["balance"])
        happening: Happening = {
            "at": iso(at), "kind": "loyalty", "run": source.get("run"),
            "step": source.get("step"), "operation": OPERATION.get(row["kind"], row["kind"]),
            "amount": int(row["amount"]), "balance": int(row["balance"]),
            "account": row["account"], "reason": row["reason"]}
        if row["expires_at"] is not None:
            happening["expires_at"] = iso(row["expires_at"])
        out.append((at, happening))
    coupons, series = Coupon.__table__.c, CouponSeries.__table__.c  # type: ignore[attr-defined]
    for row in conn.execute(sa.select(coupons, series.value)
                            .join(CouponSeries.__table__,  # type: ignore[attr-defined]
                                  series.id == coupons.series_id)
                            .where(coupons.customer_id == customer_id)
                            .order_by(coupons.issued_at)).mappings():
        at = ensure_aware(row["issued_at"])
        run, step = _run_and_step(str(row["idempotency_key"]), runs)
        bonus = [h["balance"] for moment, h in out
                 if h["operation"] != "issue_coupon" and h["account"] == "bonus" and moment <= at]
        out.append((at, {
            "at": iso(at), "kind": "loyalty", "run": run, "step": step,
            "operation": "issue_coupon", "amount": row["value"],
            "balance": bonus[-1] if bonus else 0, "account": "bonus", "code": row["code"],
            "series": row["series_id"],
            "expires_at": iso(row["expires_at"]) if row["expires_at"] else None}))
    return out


def _run_and_step(key: str, runs: set[str]) -> tuple[str | None, str | None]:
    """The run and step of an idempotency key `<workflow id>/<run key>/<step id>`."""
    for run in sorted(runs, key=len, reverse=True):
        if key.startswith(run + "/"):
            rest = key[len(run) + 1:].split("/", 1)
            return run, rest[1] if len(rest) == 2 else None
    return None, None

"""Merging two customers into one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError

from tropa.api.actor import ActorDep
from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut
from tropa.api.routes.customers import CustomerId, to_public
from tropa.api.schemas.common import CustomerIdField
from tropa.api.schemas.customers import CustomerPublic
from tropa.customers.audit import acting
from tropa.customers.identifiers import CustomerNotFound
from tropa.customers.merge import MergeRefused, merge
from tropa.logs import get_logger
from tropa.store.db import session_scope

log = get_logger("customers")
router = APIRouter(tags=["customers"], responses=ERRORS)
MAX_RUNS = 1000


class MergeRequest(BaseModel):
    """The customer to merge into the one in the path; it stops existing, its id stays as an
    alias of the survivor."""

    model_config = ConfigDict(extra="forbid")

    merge: CustomerIdField


class MergeResult(BaseModel):
    """The survivor as it is now, what moved, and the merged customer's runs still going."""

    survivor: CustomerPublic
    merged_id: str
    cards: int
    orders: int
    moved: dict[str, int]
    dropped: list[str]
    runs_in_flight: list[str]


async def runs_of(temporal: Client, customer_id: str) -> list[str]:
    """Workflow ids of the customer's runs still going (Temporal visibility)."""
    ids: list[str] = []
    query = f"TropaCustomer = '{customer_id}' AND ExecutionStatus = 'Running'"
    try:
        async for execution in temporal.list_workflows(query, limit=MAX_RUNS):
            ids.append(execution.id)
    except RPCError as exc:
        log.warning("runs_lookup_failed", status=exc.status.name)
    return sorted(ids)


@router.post("/v1/customers/{customer_id}/merge", response_model=MergeResult,
             dependencies=[Depends(require("admin"))], responses={
                 404: {"model": ErrorOut, "description": "Either customer does not exist"},
                 409: {"model": ErrorOut, "description": "The two ids are the same customer"}})
async def merge_customers(customer_id: CustomerId, body: MergeRequest, request: Request,
                          actor: ActorDep) -> MergeResult:
    """Merge `merge` into this customer: cards, orders, purchase totals, consents (the stricter
    answer wins), tags, attributes, messages and history move here; later events and
    look-ups for the merged id reach this customer. Lists the merged customer's runs still
    going; they go on under the old id until they end."""
    runs = await runs_of(request.app.state.temporal, body.merge)

    def run() -> tuple[CustomerPublic, Any]:
        with acting(actor), session_scope(request.app.state.engine) as session:
            done = merge(session, survivor_id=customer_id, merged_id=body.merge, actor=actor)
            session.flush()
            return to_public(done.survivor), done

    try:
        survivor, done = await run_in_threadpool(run)
    except CustomerNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except MergeRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    return MergeResult(survivor=survivor, merged_id=body.merge, cards=done.cards,
                       orders=done.orders, moved=done.moved, dropped=sorted(done.dropped),
                       runs_in_flight=runs)


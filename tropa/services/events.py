"""Event intake: store each event once, then start or signal the runs it concerns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tropa.clock import utcnow
from tropa.customers.identifiers import canonical_id
from tropa.customers.view import customer_view
from tropa.dsl import triggers
from tropa.dsl.expressions import ExpressionError
from tropa.dsl.plan import EventIn, Plan, RunInput
from tropa.logs import get_logger
from tropa.services.journeys import JourneyCatalogue
from tropa.store.db import session_scope
from tropa.store.models import ActiveRun, Customer, Event
from tropa.workflows import search_attributes as sa_keys
from tropa.workflows.journey_run import JourneyRun

log = get_logger("events")
CLAIM_TIMEOUT = timedelta(seconds=30)
# Seconds for a trigger's `where` and `key` on one event. The template sandbox bounds their
# work to well under a second; this is the safety net, generous so a busy machine never
# skips a trigger that would have matched.
TRIGGER_TIMEOUT = 5.0
# The memo holds the trigger's event id (never personal data), so a repeated event is
# recognised by the run it already started.
TRIGGER_MEMO = "trigger_event_id"

_START_POLICIES = {
    "restart": (WorkflowIDConflictPolicy.TERMINATE_EXISTING, WorkflowIDReusePolicy.ALLOW_DUPLICATE),
    "ignore": (WorkflowIDConflictPolicy.FAIL, WorkflowIDReusePolicy.ALLOW_DUPLICATE),
    "parallel": (WorkflowIDConflictPolicy.FAIL, WorkflowIDReusePolicy.ALLOW_DUPLICATE),
    "once": (WorkflowIDConflictPolicy.FAIL, WorkflowIDReusePolicy.REJECT_DUPLICATE),
}


class UnknownCustomer(LookupError):
    """An event names a customer Tropa does not know."""


@dataclass
class Routed:
    """What one event did: runs started, runs signalled, triggers skipped and why."""

    status: Literal["accepted", "duplicate"]
    started: list[str] = field(default_factory=list)
    signalled: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def run_id_for(plan: Plan, customer_id: str, key: str | None, event_id: str) -> str:
    """The deterministic workflow ID `journey/<journey>/<customer>[/<key>]`."""
    parts = ["journey", plan.journey, customer_id]
    if key:
        parts.append(key)
    if plan.re_entry == "parallel":
        parts.append(event_id)
    return "/".join(parts)


class EventRouter:
    """Routes stored events to JourneyRun workflows."""

    def __init__(self, engine: sa.Engine, client: Client, catalogue: JourneyCatalogue,
                 task_queue: str) -> None:
        self._engine = engine
        self._client = client
        self._catalogue = catalogue
        self._task_queue = task_queue

    @property
    def engine(self) -> sa.Engine:
        """The database events are stored in."""
        return self._engine

    async def ingest(self, event: EventIn) -> Routed:
        """Store the event once; a repeated `event_id` is acknowledged and not routed again."""
        customer = await run_in_threadpool(self._claim, event)
        if customer is None:
            return Routed(status="duplicate")
        try:
            routed = await self.route(event, customer)
        except BaseException:
            await run_in_threadpool(self._release, event.event_id)
            raise
        await run_in_threadpool(self._mark_routed, event.event_id, routed)
        return routed

    def _claim(self, event: EventIn) -> dict[str, Any] | None:
        """Store the event and claim its routing; None when it is (being) routed already."""
        with session_scope(self._engine) as session:
            customer = session.get(Customer, event.customer_id)
            if customer is None:
                # A merged id: the event is the survivor's.
                survivor = canonical_id(session, event.customer_id)
                customer = session.get(Customer, survivor) if survivor else None
                if customer is None:
                    raise UnknownCustomer(event.customer_id)
                event.customer_id = customer.id
            view = customer_view(customer)
        now = utcnow()
        try:
            with session_scope(self._engine) as session:
                session.add(Event(event_id=event.event_id, type=event.type,
                                  customer_id=event.customer_id, occurred_at=event.occurred_at,
                                  received_at=now, claimed_at=now, data=event.data))
            return view
        except IntegrityError:
            pass
        # A stored event: route it only if an earlier attempt failed or died mid-way.
        events = Event.__table__.c  # type: ignore[attr-defined]
        with self._engine.begin() as conn:
            claimed = conn.execute(
                sa.update(Event.__table__)  # type: ignore[attr-defined]
                .where(events.event_id == event.event_id, events.routed_at.is_(None),
                       sa.or_(events.claimed_at.is_(None),
                              events.claimed_at < now - CLAIM_TIMEOUT))
                .values(claimed_at=now)
            ).rowcount
        return view if claimed else None

    def _release(self, event_id: str) -> None:
        with session_scope(self._engine) as session:
            session.execute(sa.update(Event).where(Event.event_id == event_id)  # type: ignore[arg-type]
                            .values(claimed_at=None))

    def _mark_routed(self, event_id: str, routed: Routed) -> None:
        with session_scope(self._engine) as session:
            session.execute(sa.update(Event).where(Event.event_id == event_id)  # type: ignore[arg-type]
                            .values(routed_at=utcnow(),
                                    routed_to=[*routed.started, *routed.signalled]))

    async def route(self, event: EventIn, customer: dict[str, Any]) -> Routed:
        """Start runs this event triggers and signal runs that listen to it."""
        routed = Routed(status="accepted")
        catalogue = await self._catalogue.current()
        context = {"event": event.model_dump(mode="json"), "customer": customer,
                   "steps": {}, "journey": {}}
        triggered: set[str] = set()
        for plan in catalogue.triggers.get(event.type, []):
            # A journey that started a run from this event does not also get it as a
            # signal; one whose trigger was skipped does (its run in flight may wait for it).
            if await self._trigger(plan, event, context, routed):
                triggered.add(plan.journey)
        for plan in catalogue.listeners.get(event.type, []):
            if plan.journey not in triggered:
                await self._signal(plan, event, routed)
        log.info("event_routed", event_type=event.type, started=len(routed.started),
                 signalled=len(routed.signalled), skipped=len(routed.skipped))
        return routed

    async def _trigger(self, plan: Plan, event: EventIn, context: dict[str, Any],
                       routed: Routed) -> bool:
        """Start a run of `plan` for this event; False when the trigger was skipped."""
        context = {**context, "journey": {"name": plan.journey, "version": plan.version}}
        try:
            # Off the event loop and bounded in time: a costly key or `where` delays only
            # this event, never the others.
            matches, key = (await asyncio.wait_for(
                run_in_threadpool(triggers.match, plan.trigger, context), TRIGGER_TIMEOUT)
                if plan.trigger.where or plan.trigger.key else (True, None))
        except ExpressionError as exc:
            routed.skipped.append({"journey": plan.journey, "reason": str(exc)})
            return False
        except TimeoutError:
            routed.skipped.append({"journey": plan.journey, "reason": "the trigger's `where` "
                                   f"or `key` took longer than {TRIGGER_TIMEOUT:g} s"})
            return False
        if not matches:
            routed.skipped.append({"journey": plan.journey, "reason": "where is false"})
            return False
        workflow_id = run_id_for(plan, event.customer_id, key, event.event_id)
        too_long = triggers.run_id_problem(workflow_id)
        if too_long:
            routed.skipped.append({"journey": plan.journey, "reason": too_long})
            return False
        # Listeners are looked up in ActiveRun, so the row exists before the run can wait:
        # an exit event arriving right after the start then finds it.
        remembered = (plan.trigger.key is not None or plan.re_entry == "parallel") and (
            await run_in_threadpool(self._remember_run, workflow_id, plan, event.customer_id))
        try:
            if plan.re_entry == "restart":
                await self._restart(plan, event, workflow_id)
            else:
                await self._start(plan, event, workflow_id, *_START_POLICIES[plan.re_entry])
        except WorkflowAlreadyStartedError:
            if remembered:
                await run_in_threadpool(self._forget_run, workflow_id)
            routed.skipped.append({"journey": plan.journey,
                                   "reason": f"re_entry {plan.re_entry}: a run exists"})
            return False
        routed.started.append(workflow_id)
        return True

    async def _restart(self, plan: Plan, event: EventIn, workflow_id: str) -> None:
        """Start, replacing a run in flight, unless that run came from this very event (a
        client repeating an event whose first routing failed half-way)."""
        try:
            await self._start(plan, event, workflow_id, WorkflowIDConflictPolicy.FAIL,
                              WorkflowIDReusePolicy.ALLOW_DUPLICATE)
            return
        except WorkflowAlreadyStartedError:
            pass
        description = await self._client.get_workflow_handle(workflow_id).describe()
        memo = await description.memo()
        if memo.get(TRIGGER_MEMO) == event.event_id:
            return
        await self._start(plan, event, workflow_id, *_START_POLICIES["restart"])

    async def _start(self, plan: Plan, event: EventIn, workflow_id: str,
                     conflict: WorkflowIDConflictPolicy, reuse: WorkflowIDReusePolicy) -> None:
        await self._client.start_workflow(
            JourneyRun.run,
            RunInput(plan=plan, customer_id=event.customer_id, trigger_event=event),
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=conflict,
            id_reuse_policy=reuse,
            memo={TRIGGER_MEMO: event.event_id},
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa_keys.JOURNEY, plan.journey),
                SearchAttributePair(sa_keys.CUSTOMER, event.customer_id),
                SearchAttributePair(sa_keys.VERSION, plan.version),
                SearchAttributePair(sa_keys.STEP, "start"),
            ]),
        )

    async def _signal(self, plan: Plan, event: EventIn, routed: Routed) -> None:
        if plan.trigger.key is None and plan.re_entry != "parallel":
            ids = [run_id_for(plan, event.customer_id, None, event.event_id)]
        else:
            ids = await run_in_threadpool(self._active_runs, plan.journey, event.customer_id)
        for workflow_id in ids:
            if workflow_id in routed.signalled:
                continue
            try:
                await self._client.get_workflow_handle(workflow_id).signal(JourneyRun.event, event)
                routed.signalled.append(workflow_id)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                await run_in_threadpool(self._forget_run, workflow_id)

    def _active_runs(self, journey: str, customer_id: str) -> list[str]:
        with session_scope(self._engine) as session:
            return list(session.exec(select(ActiveRun.workflow_id).where(
                ActiveRun.journey == journey, ActiveRun.customer_id == customer_id)))

    def _remember_run(self, workflow_id: str, plan: Plan, customer_id: str) -> bool:
        """Index a keyed or parallel run; True when this call added the row."""
        # Only keyed and parallel runs need it: the others have IDs the router can compute.
        if plan.trigger.key is None and plan.re_entry != "parallel":
            return False
        try:
            with session_scope(self._engine) as session:
                if session.get(ActiveRun, workflow_id) is not None:
                    return False
                session.add(ActiveRun(workflow_id=workflow_id, journey=plan.journey,
                                      customer_id=customer_id))
        except IntegrityError:
            return False  # another request indexed it at the same moment
        return True

    def _forget_run(self, workflow_id: str) -> None:
        with session_scope(self._engine) as session:
            row = session.get(ActiveRun, workflow_id)
            if row is not None:
                session.delete(row)

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
from tropa.dsl.expressions import ExpressionError, evaluate
from tropa.dsl.plan import EventIn, Plan, RunInput
from tropa.logs import get_logger
from tropa.services.journeys import JourneyCatalogue
from tropa.services.last_events import occurrence_runs, record_last_event
from tropa.steps.builtin import registry
from tropa.store.db import session_scope
from tropa.store.models import ActiveRun, Customer, Event
from tropa.workflows import search_attributes as sa_keys

log = get_logger("events")
# JourneyRun and its signals by their registered names: this service starts and signals runs
# but sits below the workflow layer, so it does not import the workflow class.
JOURNEY_RUN = "JourneyRun"
RESTART_SIGNAL = "restart"
EVENT_SIGNAL = "event"
CLAIM_TIMEOUT = timedelta(seconds=30)
# Seconds for a trigger's `where` and `key` on one event. The template sandbox bounds their
# work to well under a second; this is the safety net, generous so a busy machine never
# skips a trigger that would have matched.
TRIGGER_TIMEOUT = 5.0
TRIGGER_MEMO = sa_keys.TRIGGER_MEMO

_START_POLICIES = {
    # A run in flight gets the new trigger as the `restart` signal and stops gracefully.
    "restart": (WorkflowIDConflictPolicy.FAIL, WorkflowIDReusePolicy.ALLOW_DUPLICATE),
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


def run_summary(plan: Plan, customer_id: str) -> str:
    """The run's line in the Temporal Web UI: journey, version, customer id (no personal
    data: the id is the shop's own key)."""
    return f"{plan.journey} · version {plan.version} · customer {customer_id}"


class EventRouter:
    """Routes stored events to JourneyRun workflows."""

    def __init__(self, engine: sa.Engine, client: Client, catalogue: JourneyCatalogue,
                 task_queue: str) -> None:
        self._engine = engine
        self._client = client
        self._catalogue = catalogue
        self._task_queue = task_queue

    @property
    def catalogue(self) -> JourneyCatalogue:
        """The journeys whose triggers this router starts."""
        return self._catalogue

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
                session.flush()
                record_last_event(session.connection(), event)
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
            if claimed:
                record_last_event(conn, event)
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
        context = {"event": event.as_context(), "customer": customer,
                   "steps": {}, "journey": {}}
        triggered: set[str] = set()
        for plan in catalogue.triggers.get(event.type, []):
            # A journey that started a run from this event does not also get it as a
            # signal; one whose trigger was skipped does (its run in flight may wait for it).
            if await self._trigger(plan, event, context, routed):
                triggered.add(plan.journey)
        for plan in catalogue.listeners.get(event.type, []):
            if plan.journey in triggered:
                continue
            if plan.trigger.kind == "event" and plan.trigger.key is not None:
                await self._signal_keyed(plan, event, context, routed)
            else:
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
            await self._start(plan, event, workflow_id, *_START_POLICIES[plan.re_entry])
        except WorkflowAlreadyStartedError:
            if remembered:
                await run_in_threadpool(self._forget_run, workflow_id)
            routed.skipped.append({"journey": plan.journey,
                                   "reason": f"re_entry {plan.re_entry}: a run exists"})
            return False
        routed.started.append(workflow_id)
        return True

    async def start_occurrence(self, plan: Plan, event: EventIn, workflow_id: str, *,
                               start_delay: timedelta | None = None) -> str:
        """Start the run of a date or inactivity occurrence with its synthetic trigger event:
        "started", "exists" (an earlier sweep started it) or why the trigger was skipped."""
        customer = await run_in_threadpool(self._view, event.customer_id)
        if customer is None:
            return "customer gone"
        context = {"event": event.as_context(), "customer": customer, "steps": {},
                   "journey": {"name": plan.journey, "version": plan.version}}
        try:
            if plan.trigger.where and not evaluate(plan.trigger.where, context):
                return "where is false"
        except ExpressionError as exc:
            return str(exc)
        try:
            await self._start(plan, event, workflow_id, WorkflowIDConflictPolicy.FAIL,
                              WorkflowIDReusePolicy.REJECT_DUPLICATE, start_delay=start_delay)
        except WorkflowAlreadyStartedError:
            return "exists"
        return "started"

    def _view(self, customer_id: str) -> dict[str, Any] | None:
        with session_scope(self._engine) as session:
            customer = session.get(Customer, customer_id)
            return customer_view(customer) if customer is not None else None

    async def _start(self, plan: Plan, event: EventIn, workflow_id: str,
                     conflict: WorkflowIDConflictPolicy, reuse: WorkflowIDReusePolicy, *,
                     start_delay: timedelta | None = None) -> None:
        """Start the run. For `re_entry: restart`, a run in flight gets the new input as its
        `restart` signal and stops gracefully (a repeated event is ignored by the run)."""
        inp = RunInput(plan=plan, customer_id=event.customer_id,
                       trigger_event=event.keeping(plan.event_fields))
        if plan.re_entry != "restart" or start_delay is not None:
            await self._start_run(plan, inp, workflow_id, conflict, reuse,
                                  start_delay=start_delay)
            return
        for _ in range(3):
            try:
                await self._start_run(plan, inp, workflow_id, WorkflowIDConflictPolicy.FAIL,
                                      reuse)
                return
            except WorkflowAlreadyStartedError:
                pass
            try:
                await self._client.get_workflow_handle(workflow_id).signal(
                    RESTART_SIGNAL, inp)
                return
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                # the run ended between the start and the signal: start again
        raise WorkflowAlreadyStartedError(workflow_id, "JourneyRun")

    async def _start_run(self, plan: Plan, inp: RunInput, workflow_id: str,
                         conflict: WorkflowIDConflictPolicy,
                         reuse: WorkflowIDReusePolicy, *,
                         start_delay: timedelta | None = None) -> None:
        await self._client.start_workflow(
            JOURNEY_RUN,
            inp,
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=conflict,
            id_reuse_policy=reuse,
            static_summary=run_summary(plan, inp.customer_id),
            memo={TRIGGER_MEMO: inp.trigger_event.event_id},
            start_delay=start_delay,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa_keys.JOURNEY, plan.journey),
                SearchAttributePair(sa_keys.CUSTOMER, inp.customer_id),
                SearchAttributePair(sa_keys.VERSION, plan.version),
                SearchAttributePair(sa_keys.STEP, "start"),
            ]),
        )

    async def _signal(self, plan: Plan, event: EventIn, routed: Routed) -> None:
        if plan.trigger.kind != "event":
            # An event from before a run's moment does not wake a run still in its delay.
            ids = await run_in_threadpool(occurrence_runs, self._engine, plan.journey,
                                          event.customer_id, event.occurred_at)
        elif plan.trigger.key is None and plan.re_entry != "parallel":
            ids = [run_id_for(plan, event.customer_id, None, event.event_id)]
        else:
            ids = await run_in_threadpool(self._active_runs, plan.journey, event.customer_id)
        payload = event.keeping(plan.event_fields)
        for workflow_id in ids:
            await self._send_event(workflow_id, payload, routed)

    async def _signal_keyed(self, plan: Plan, event: EventIn, context: dict[str, Any],
                            routed: Routed) -> None:
        """Signal only the run whose key this event renders to, naming the listeners it is
        for: an `order.paid` of order 2 must not end or wake the run of order 1."""
        context = {**context, "journey": {"name": plan.journey, "version": plan.version}}
        rendered: dict[str, str | None] = {}  # template -> key (None: could not render)
        by_key: dict[str, list[str]] = {}
        for listener in registry().listeners(plan, event.type):
            template = listener.key or plan.trigger.key
            assert template is not None
            if template not in rendered:
                rendered[template] = await self._listener_key(plan, listener.name, template,
                                                              context, routed)
            key = rendered[template]
            if key is not None:
                by_key.setdefault(key, []).append(listener.name)
        for key, names in by_key.items():
            ids = ([run_id_for(plan, event.customer_id, key, event.event_id)]
                   if plan.re_entry != "parallel" else
                   await run_in_threadpool(self._keyed_parallel_runs, plan, event.customer_id,
                                           key))
            payload = event.keeping(plan.event_fields).model_copy(update={"listeners": names})
            for workflow_id in ids:
                await self._send_event(workflow_id, payload, routed)

    async def _listener_key(self, plan: Plan, listener: str, template: str,
                            context: dict[str, Any], routed: Routed) -> str | None:
        """The key a listener's template renders this event to, bounded like a trigger's
        key; None, with the reason in `skipped`, when it cannot be rendered."""
        try:
            key = await asyncio.wait_for(
                run_in_threadpool(triggers.render_key, template, context,
                                  f"the key of {listener}"), TRIGGER_TIMEOUT)
        except ExpressionError as exc:
            reason = f"{listener}: the key cannot be rendered on this event ({exc})"
        except TimeoutError:
            reason = f"{listener}: the key took longer than {TRIGGER_TIMEOUT:g} s"
        else:
            if key:
                return key
            reason = f"{listener}: the key renders empty on this event"
        routed.skipped.append({"journey": plan.journey, "reason": reason})
        return None

    async def _send_event(self, workflow_id: str, event: EventIn, routed: Routed) -> None:
        """Signal one run; a run that has ended leaves the index and is no error."""
        if workflow_id in routed.signalled:
            return
        try:
            await self._client.get_workflow_handle(workflow_id).signal(EVENT_SIGNAL, event)
            routed.signalled.append(workflow_id)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await run_in_threadpool(self._forget_run, workflow_id)

    def _keyed_parallel_runs(self, plan: Plan, customer_id: str, key: str) -> list[str]:
        """Runs of a keyed `parallel` journey with this key: `<prefix>/<key>/<trigger event
        id>`. The rest after the prefix must be a trigger event of this customer, so the
        runs of key `a/b` are not taken for runs of key `a`."""
        prefix = run_id_for(plan, customer_id, key, "")
        runs = [wid for wid in self._active_runs(plan.journey, customer_id)
                if wid.startswith(prefix)]
        if not runs:
            return []
        with session_scope(self._engine) as session:
            triggers_seen = set(session.exec(select(Event.event_id).where(
                Event.customer_id == customer_id, Event.type == plan.trigger.event,
                Event.event_id.in_([wid[len(prefix):] for wid in runs]))))  # type: ignore[attr-defined]
        return [wid for wid in runs if wid[len(prefix):] in triggers_seen]

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

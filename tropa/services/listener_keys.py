"""Keyed listeners: which run of a keyed journey an `exit_on` or `wait_for` event is for.

In a journey with a trigger `key`, a listener renders its own `key:` template (else the
trigger's) on the event, and the event goes only to the run of that key, naming the
listeners it is for. The router (`tropa.services.events`) gathers the targets of every
published version here and sends one signal per run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from tropa.dsl import triggers
from tropa.dsl.expressions import ExpressionError
from tropa.store.db import session_scope
from tropa.store.models import Event


@dataclass
class KeyedTargets:
    """Runs of keyed journeys an event goes to: per workflow id, the `event.data` fields the
    listening versions read (None: all) and the listeners it is for."""

    runs: dict[str, tuple[set[str] | None, list[str]]] = field(default_factory=dict)

    def add(self, workflow_id: str, fields: list[str] | None, names: list[str]) -> None:
        """The event goes to this run for `names`, and carries `fields` (None: all)."""
        known, listeners = self.runs.get(workflow_id, (set(), []))
        wanted = None if known is None or fields is None else known | set(fields)
        self.runs[workflow_id] = (wanted, [*listeners, *names])


async def listener_key(listener: str, template: str, context: dict[str, Any],
                       timeout: float) -> tuple[str | None, str]:
    """(the key the listener's template renders this event to, "") or (None, why not):
    rendered off the event loop in the template sandbox, bounded in time and length like a
    trigger's key. An empty key names no run."""
    try:
        key = await asyncio.wait_for(
            run_in_threadpool(triggers.render_key, template, context, f"the key of {listener}"),
            timeout)
    except ExpressionError as exc:
        return None, f"{listener}: the key cannot be rendered on this event ({exc})"
    except TimeoutError:
        return None, f"{listener}: the key took longer than {timeout:g} s"
    if not key:
        return None, f"{listener}: the key renders empty on this event"
    return key, ""


def runs_of_triggers(engine: sa.Engine, prefix: str, runs: list[str], customer_id: str,
                     event_type: str) -> list[str]:
    """The runs among `runs` (`<prefix><trigger event id>`, a keyed `parallel` journey's ids)
    whose rest is a trigger event of this customer: so the runs of key `a/b` are not taken
    for runs of key `a`."""
    candidates = [wid for wid in runs if wid.startswith(prefix)]
    if not candidates:
        return []
    with session_scope(engine) as session:
        found = set(session.exec(select(Event.event_id).where(
            Event.customer_id == customer_id, Event.type == event_type,
            Event.event_id.in_([wid[len(prefix):] for wid in candidates]))))  # type: ignore[attr-defined]
    return [wid for wid in candidates if wid[len(prefix):] in found]

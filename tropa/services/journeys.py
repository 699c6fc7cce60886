"""Journey versions: store, publish, pause, and the in-memory catalogue the router reads."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from tropa.clock import utcnow
from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import Plan
from tropa.steps.builtin import registry
from tropa.store.db import session_scope
from tropa.store.models import Journey, JourneyVersion


class NotFound(LookupError):
    """A journey or version that does not exist; the message names it."""


class Conflict(ValueError):
    """A change the journey's status does not allow; the message says what would."""


# Pausing or archiving stops new entries only. Runs in flight carry their Plan as input and
# keep going, and they still receive the events they wait for (wait_for, exit_on), so no
# customer is stranded mid-journey; cancel single runs through the runs API if needed.
TRANSITIONS: dict[str, dict[str, str]] = {
    "pause": {"published": "paused", "paused": "paused"},
    "resume": {"paused": "published", "published": "published"},
    "archive": {"draft": "archived", "published": "archived", "paused": "archived",
                "archived": "archived"},
}


def create_version(session: Session, source_yaml: str, source: str = "<request>") -> JourneyVersion:
    """Validate and store a version; the same content twice gives the same version."""
    plan = compile_journey(source_yaml, source)
    journey = session.get(Journey, plan.journey)
    if journey is None:
        journey = Journey(name=plan.journey)
        session.add(journey)
        session.flush()
    existing = session.exec(
        select(JourneyVersion).where(JourneyVersion.journey == plan.journey,
                                     JourneyVersion.version == plan.version)
    ).first()
    if existing is not None:
        return existing
    version = JourneyVersion(journey=plan.journey, version=plan.version, source_yaml=source_yaml,
                             plan=plan.model_dump(mode="json"))
    session.add(version)
    session.flush()
    return version


def publish(session: Session, name: str, version: str) -> Journey:
    """Make a version live: its trigger starts runs from now on."""
    journey = session.get(Journey, name)
    if journey is None:
        raise NotFound(f"journey {name!r} does not exist")
    row = session.exec(select(JourneyVersion).where(JourneyVersion.journey == name,
                                                    JourneyVersion.version == version)).first()
    if row is None:
        raise NotFound(f"journey {name!r} has no version {version!r}")
    if journey.status == "archived":
        raise Conflict(f"journey {name!r} is archived; archived journeys cannot be published "
                       "again, store the YAML under a new journey name")
    row.published_at = row.published_at or utcnow()
    journey.live_version, journey.status, journey.updated_at = version, "published", utcnow()
    session.add(row)
    session.add(journey)
    return journey


def get_journey(session: Session, name: str) -> Journey:
    """A journey by name, or NotFound."""
    journey = session.get(Journey, name)
    if journey is None:
        raise NotFound(f"journey {name!r} does not exist")
    return journey


def versions_of(session: Session, name: str) -> list[JourneyVersion]:
    """Every stored version of a journey, oldest first."""
    return list(session.exec(select(JourneyVersion).where(JourneyVersion.journey == name)
                             .order_by(JourneyVersion.id)))  # type: ignore[arg-type]


def change_status(session: Session, name: str, action: str) -> Journey:
    """Pause, resume or archive a journey; repeating an action is a no-op."""
    journey = get_journey(session, name)
    target = TRANSITIONS[action].get(journey.status)
    if target is None:
        raise Conflict(f"cannot {action} journey {name!r} while it is {journey.status}"
                       + ("; publish a version first" if journey.status == "draft" else ""))
    if target != journey.status:
        journey.status, journey.updated_at = target, utcnow()
        session.add(journey)
    return journey


def set_status(session: Session, name: str, status: str) -> Journey:
    """Set a journey's status directly (for tools; the API goes through change_status)."""
    journey = get_journey(session, name)
    journey.status, journey.updated_at = status, utcnow()
    session.add(journey)
    return journey


@dataclass
class Catalogue:
    """Live triggers and every published version's listeners, by event type; live date and
    inactivity journeys, which the hourly sweep starts and the event router ignores; live
    schedule journeys, which their own Temporal Schedules fire."""

    triggers: dict[str, list[Plan]] = field(default_factory=dict)
    listeners: dict[str, list[Plan]] = field(default_factory=dict)
    timed: list[Plan] = field(default_factory=list)
    scheduled: list[Plan] = field(default_factory=list)


class JourneyCatalogue:
    """An in-memory snapshot of published journeys for the event router.

    It reloads when a journey is published, paused, resumed or archived:
    - in this process, the API calls `invalidate()` after the change commits, and the next
      event reloads before it is routed;
    - in another process (a second API, `tropa publish`), every publish or status change
      moves the journeys' stamp (their count and latest `updated_at`). At most every
      `max_age_seconds` an event checks that stamp with one small query, and reloads only
      when it moved; so a change made elsewhere is live within that time.
    The check and the reload run in a worker thread (`current`), never on the event loop;
    in between, routing an event reads the snapshot without touching the database.
    """

    def __init__(self, engine: sa.Engine, max_age_seconds: float = 1.0) -> None:
        self._engine = engine
        self._max_age = max_age_seconds
        self._checked_at = float("-inf")
        self._dirty = True
        self._stamp: tuple[int, object] | None = None
        self._snapshot = Catalogue()
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Reload before the next event (after a change of what is live, in this process)."""
        self._dirty = True

    async def current(self) -> Catalogue:
        """The snapshot, checked against the database off the loop when it is due."""
        if self._dirty or time.monotonic() - self._checked_at >= self._max_age:
            await asyncio.to_thread(self.refresh)
        return self._snapshot

    def refresh(self) -> Catalogue:
        """Check the stamp now and reload if it moved (or after `invalidate`); blocking."""
        with self._lock:
            if not self._dirty and time.monotonic() - self._checked_at < self._max_age:
                return self._snapshot  # another caller checked meanwhile
            dirty = self._dirty
            self._dirty = False
            stamp = self._read_stamp()
            if dirty or stamp != self._stamp:
                self._snapshot = self._load()
                self._stamp = stamp
            self._checked_at = time.monotonic()
            return self._snapshot

    def _read_stamp(self) -> tuple[int, object]:
        with self._engine.connect() as conn:
            count, latest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(Journey.updated_at))).one()
        return int(count), latest

    def _load(self) -> Catalogue:
        catalogue = Catalogue()
        with session_scope(self._engine) as session:
            journeys = {j.name: j for j in session.exec(select(Journey))}
            rows = session.exec(select(JourneyVersion).where(
                JourneyVersion.published_at.is_not(None)))  # type: ignore[union-attr]
            for row in rows:
                plan = Plan.model_validate(row.plan)
                journey = journeys[row.journey]
                if journey.status == "published" and journey.live_version == row.version:
                    if plan.trigger.kind == "event":
                        catalogue.triggers.setdefault(plan.trigger.event, []).append(plan)
                    elif plan.trigger.kind == "schedule":
                        catalogue.scheduled.append(plan)
                    else:
                        catalogue.timed.append(plan)
                for event_type in registry().events_listened(plan):
                    catalogue.listeners.setdefault(event_type, []).append(plan)
        return catalogue

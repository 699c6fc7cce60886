"""Who changed a customer, card, order, tag or consent, when, and what changed.

Phone, email and names are never copied into the audit: a change to them is recorded as
`{"changed": true}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.store.customer_models import AuditEntry
from tropa.store.models import Customer

ActorKind = Literal["api_key", "import", "journey", "cli", "system"]
Entity = Literal["customer", "card", "order", "tag", "consent"]
SECRET_FIELDS = frozenset({"phone", "email", "first_name", "last_name", "track"})


@dataclass(frozen=True)
class Actor:
    """Who made a change: an API key (id, name), an import job, a journey run and step, the CLI."""

    kind: ActorKind
    id: str | None = None
    name: str | None = None


CLI = Actor("cli", name="tropa command line")
SYSTEM = Actor("system")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Fields whose value changed, as `{field: {"from": a, "to": b}}`, contacts redacted."""
    out: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        old, new = _plain(old), _plain(new)
        out[name] = {"changed": True} if name in SECRET_FIELDS else {"from": old, "to": new}
    return out


def record(session: Session, *, customer_id: str, entity: Entity, entity_id: str,
           action: str, actor: Actor, changes: dict[str, Any] | None = None) -> None:
    """Add an audit entry in the caller's transaction (so it commits with the change)."""
    session.add(AuditEntry(customer_id=customer_id, entity=entity, entity_id=entity_id,
                           action=action, actor_kind=actor.kind, actor_id=actor.id,
                           actor_name=actor.name, changes=changes or {}, at=utcnow()))


def history(session: Session, customer_id: str, *, limit: int = 100,
            before_id: int | None = None) -> list[AuditEntry]:
    """A customer's audit entries, newest first."""
    query = select(AuditEntry).where(AuditEntry.customer_id == customer_id)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)))


# -- changes made through the ORM (API, journey steps) are recorded as they are flushed ---------

_actor: ContextVar[Actor] = ContextVar("tropa_audit_actor", default=SYSTEM)
FIELDS = ("external_id", "first_name", "last_name", "phone", "phone_verified", "email",
          "email_verified", "time_zone", "locale", "birthday", "registered_at", "consents",
          "tags", "attributes")


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Changes to customers inside this block are recorded as made by `actor`."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def set_actor(actor: Actor) -> None:
    """Record changes in the current context (a request) as made by `actor`."""
    _actor.set(actor)


def _customer_changes(obj: Customer) -> dict[str, Any]:
    state = sa.inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in FIELDS:
        history = state.attrs[name].history
        if history.has_changes():
            before[name] = history.deleted[0] if history.deleted else None
            after[name] = history.added[0] if history.added else None
    return diff(before, after)


def _before_flush(session: orm.Session, _context: Any, _instances: Any) -> None:
    actor = _actor.get()
    for obj in list(session.new):
        if isinstance(obj, Customer):
            after = {name: getattr(obj, name) for name in FIELDS}
            changes = diff({}, {k: v for k, v in after.items() if v not in (None, {}, [])})
            session.add(AuditEntry(customer_id=obj.id, entity="customer", entity_id=obj.id,
                                   action="created", actor_kind=actor.kind, actor_id=actor.id,
                                   actor_name=actor.name, changes=changes, at=utcnow()))
    for obj in list(session.dirty):
        if isinstance(obj, Customer):
            changes = _customer_changes(obj)
            if not changes:
                continue
            entity: Entity = "consent" if set(changes) == {"consents"} else "customer"
            session.add(AuditEntry(customer_id=obj.id, entity=entity, entity_id=obj.id,
                                   action="updated", actor_kind=actor.kind, actor_id=actor.id,
                                   actor_name=actor.name, changes=changes, at=utcnow()))


sa.event.listen(orm.Session, "before_flush", _before_flush)

"""Who changed a customer, card, order, tag or consent, when, and what changed.

Phone, email and names are never copied into the audit: a change to them is recorded as
`{"changed": true}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.store.customer_models import AuditEntry

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
        old, new = _plain(before.get(name)), _plain(after.get(name))
        if old == new:
            continue
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

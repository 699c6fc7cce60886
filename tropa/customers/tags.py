"""Tags as a resource: a colour and a description; customers keep plain tag names."""

from __future__ import annotations

from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.customers.audit import Actor, diff, record
from tropa.store.customer_models import TagDefinition


class TagNotFound(LookupError):
    """No tag definition with that name."""


def put_tag(session: Session, *, name: str, colour: str | None, description: str | None,
            actor: Actor) -> tuple[TagDefinition, bool]:
    """Define or change a tag."""
    tag = session.get(TagDefinition, name)
    created = tag is None
    before = {} if tag is None else {"colour": tag.colour, "description": tag.description}
    if tag is None:
        tag = TagDefinition(name=name)
    tag.colour, tag.description = colour, description
    changes = diff(before, {"colour": colour, "description": description})
    if changes:
        tag.updated_at = utcnow()
        session.add(tag)
        record(session, customer_id="", entity="tag", entity_id=name,
               action="created" if created else "updated", actor=actor, changes=changes)
    return tag, created


def get_tag(session: Session, name: str) -> TagDefinition:
    """One tag, or TagNotFound."""
    tag = session.get(TagDefinition, name)
    if tag is None:
        raise TagNotFound(f"tag {name!r} is not defined; define it with PUT /v1/tags/{name}")
    return tag


def list_tags(session: Session) -> list[TagDefinition]:
    """Every defined tag by name."""
    return list(session.exec(select(TagDefinition).order_by(col(TagDefinition.name))))


def delete_tag(session: Session, name: str, actor: Actor) -> None:
    """Remove a tag's definition; customers keep the plain name."""
    session.delete(get_tag(session, name))
    record(session, customer_id="", entity="tag", entity_id=name, action="deleted",
           actor=actor)

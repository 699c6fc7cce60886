"""Merging two records of one shopper (duplicate cards are common in retail).

Cards, orders, messages, events and the audit move to the survivor; purchase totals are
recomputed; consents merge with the stricter answer winning (a withdrawal beats a grant);
tags join; attributes and profile fields the survivor lacks are taken from the merged
record. The merged id stays as an alias, so later events and look-ups for it reach the
survivor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from tropa.clock import utcnow
from tropa.customers.audit import Actor, diff, record
from tropa.customers.identifiers import CustomerNotFound
from tropa.customers.locking import lock_customer
from tropa.customers.orders import refresh_totals
from tropa.store.customer_models import Card, CustomerAlias, Order, PurchaseStats
from tropa.store.models import Customer

PROFILE = ("external_id", "first_name", "last_name", "phone", "email", "birthday",
           "registered_at")
# Tables whose rows follow the customer by a plain customer_id column.
FOLLOW = ("messages", "events", "audit_log", "side_effects")


class MergeRefused(ValueError):
    """The merge cannot be done as asked (the same customer twice, say)."""


@dataclass
class Merged:
    """What a merge moved."""

    survivor: Customer
    merged_id: str
    cards: int = 0
    orders: int = 0
    moved: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, Any] = field(default_factory=dict)


def stricter(a: dict[str, dict[str, bool]],
             b: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
    """Consents of both records: an answer on one side stands; where they differ, no wins."""
    out: dict[str, dict[str, bool]] = {}
    for category in sorted(set(a) | set(b)):
        left, right = a.get(category, {}), b.get(category, {})
        out[category] = {ch: (left.get(ch, True) and right.get(ch, True))
                         for ch in sorted(set(left) | set(right))}
    return out


def merge(session: Session, *, survivor_id: str, merged_id: str, actor: Actor) -> Merged:
    """Merge `merged_id` into `survivor_id` in the caller's transaction."""
    if survivor_id == merged_id:
        raise MergeRefused("a customer cannot be merged into itself; name two customers")
    for cid in sorted((survivor_id, merged_id)):  # the same order everywhere: no deadlock
        if not lock_customer(session, cid):
            raise CustomerNotFound(f"customer {cid!r} does not exist")
    survivor = session.get(Customer, survivor_id, populate_existing=True)
    other = session.get(Customer, merged_id, populate_existing=True)
    assert survivor is not None and other is not None
    before = {name: getattr(survivor, name) for name in (*PROFILE, "consents", "tags",
                                                         "attributes")}
    result = Merged(survivor=survivor, merged_id=merged_id)
    taken: dict[str, Any] = {}
    for name in PROFILE:
        theirs = getattr(other, name)
        if theirs is None:
            continue
        if getattr(survivor, name) is None:
            taken[name] = theirs
        elif getattr(survivor, name) != theirs and name in ("external_id", "phone", "email"):
            result.dropped[name] = True  # the survivor keeps its own; never echo contacts
    # Unique identifiers leave the merged record before the survivor takes them.
    for name in ("external_id", "phone", "email"):
        setattr(other, name, None)
    session.add(other)
    session.flush()
    for name, value in taken.items():
        setattr(survivor, name, value)
    if other.registered_at and survivor.registered_at and \
            other.registered_at < survivor.registered_at:
        survivor.registered_at = other.registered_at
    survivor.consents = stricter(survivor.consents, other.consents)
    survivor.tags = list(dict.fromkeys([*survivor.tags, *other.tags]))
    survivor.attributes = {**other.attributes, **survivor.attributes}
    survivor.phone_verified = survivor.phone_verified or (
        "phone" in taken and other.phone_verified)
    survivor.email_verified = survivor.email_verified or (
        "email" in taken and other.email_verified)
    survivor.updated_at = utcnow()
    session.add(survivor)

    result.cards = _move(session, Card, merged_id, survivor_id)
    result.orders = _move(session, Order, merged_id, survivor_id)
    for table in FOLLOW:
        moved = session.execute(sa.text(f"UPDATE {table} SET customer_id = :s "
                                        "WHERE customer_id = :m"),
                                {"s": survivor_id, "m": merged_id})
        result.moved[table] = int(moved.rowcount)  # type: ignore[attr-defined]
    currencies = set(session.exec(select(PurchaseStats.currency).where(
        col(PurchaseStats.customer_id).in_([survivor_id, merged_id]))))
    session.execute(sa.delete(PurchaseStats).where(
        PurchaseStats.customer_id == merged_id))  # type: ignore[arg-type]
    session.flush()
    for currency in sorted(currencies):
        refresh_totals(session, survivor_id, currency)

    session.execute(sa.update(CustomerAlias).where(
        CustomerAlias.customer_id == merged_id)  # type: ignore[arg-type]
        .values(customer_id=survivor_id))
    session.add(CustomerAlias(alias_id=merged_id, customer_id=survivor_id, merged_at=utcnow()))
    session.delete(other)
    session.flush()
    after = {name: getattr(survivor, name) for name in before}
    record(session, customer_id=survivor_id, entity="customer", entity_id=survivor_id,
           action="merged", actor=actor, changes={
               "merged_id": merged_id, "cards": result.cards, "orders": result.orders,
               **{f"moved_{k}": v for k, v in result.moved.items()},
               "fields": diff(before, after)})
    return result


def _move(session: Session, model: Any, merged_id: str, survivor_id: str) -> int:
    moved = session.execute(sa.update(model).where(model.customer_id == merged_id)
                            .values(customer_id=survivor_id))
    return int(moved.rowcount)  # type: ignore[attr-defined]

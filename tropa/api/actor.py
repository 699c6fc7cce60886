"""Who is calling: the API key's id and name, for the audit of customer data."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from tropa.customers.audit import Actor, set_actor
from tropa.services.api_keys import hash_key
from tropa.store.db import session_scope
from tropa.store.models import ApiKey

# The same header the scope check reads (deps.require); auto_error off, that check answers 401.
_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key made by `tropa keys create`")


def _lookup(request: Request, key: str) -> Actor:
    cache: dict[str, Actor] | None = getattr(request.app.state, "actor_cache", None)
    if cache is None:
        cache = request.app.state.actor_cache = {}
    actor = cache.get(key)
    if actor is None:
        with session_scope(request.app.state.engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
        actor = Actor("api_key", row.id, row.name) if row is not None else Actor("api_key")
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = actor
    return actor


async def current_actor(request: Request,
                        key: Annotated[str | None, Security(_header)] = None) -> Actor:
    """The API key making the request (id and name), as the audit names it; changes to
    customers in this request are recorded as made by it."""
    cache: dict[str, Actor] = getattr(request.app.state, "actor_cache", None) or {}
    found = cache.get(key) if key else Actor("api_key")
    actor = found if found is not None else await run_in_threadpool(_lookup, request, key or "")
    set_actor(actor)
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]

"""Request dependencies: the database session, the event router, API key checks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from tropa.services.api_keys import scopes_of
from tropa.store.db import session_scope

_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key made by `tropa keys create`")


def get_session(request: Request) -> Iterator[Session]:
    """A session per request, committed when the route returns."""
    with session_scope(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


_KEY_CACHE_SECONDS = 30.0


async def _cached_scopes(request: Request, key: str) -> list[str] | None:
    # Keys are checked on every event; a short cache keeps that off the database (and the
    # check on the event loop, with no thread hop) while a revoked key stops working within
    # half a minute.
    cache: dict[str, tuple[float, list[str] | None]] = request.app.state.key_cache
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < _KEY_CACHE_SECONDS:
        return hit[1]
    scopes = await run_in_threadpool(_scopes_from_db, request.app.state.engine, key)
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now, scopes)
    return scopes


def _scopes_from_db(engine: sa.Engine, key: str) -> list[str] | None:
    with session_scope(engine) as session:
        return scopes_of(session, key)


def require(scope: str) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with a key holding `scope` (or admin)."""

    async def check(request: Request, key: Annotated[str | None, Security(_header)]) -> None:
        if not key:
            raise HTTPException(401, "missing API key: send it in the X-API-Key header",
                                headers={"WWW-Authenticate": "ApiKey"})
        scopes = await _cached_scopes(request, key)
        if scopes is None:
            raise HTTPException(401, "invalid or revoked API key",
                                headers={"WWW-Authenticate": "ApiKey"})
        if scope not in scopes and "admin" not in scopes:
            raise HTTPException(403, f"this API key lacks the `{scope}` scope")

    return check

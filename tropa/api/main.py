"""The FastAPI application: routers gathered, errors shaped, state wired."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from tropa.api.routes import customers, events, journeys, runs
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings


def create_app(settings: Settings, engine: sa.Engine, temporal: Client) -> FastAPI:
    """The API, bound to a database and a Temporal client."""
    app = FastAPI(
        title="Tropa",
        version="0.1.0",
        description="Events, customers and journeys of Tropa, the retail journey engine.",
    )
    catalogue = JourneyCatalogue(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.temporal = temporal
    app.state.catalogue = catalogue
    app.state.key_cache = {}
    app.state.event_router = EventRouter(engine, temporal, catalogue,
                                         settings.temporal.task_queue)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.api.max_body_bytes:
            return JSONResponse(status_code=413, content={
                "detail": f"body of {length} bytes is over the limit of "
                          f"{settings.api.max_body_bytes}; split it into smaller requests"})
        return await call_next(request)

    for module in (events, customers, journeys, runs):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app

"""The FastAPI application: routers gathered, errors shaped, state wired."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from temporalio.client import Client

from tropa.api import errors
from tropa.api.access_log import hide_query_strings
from tropa.api.limits import BodyLimit
from tropa.api.routes import (
    audiences,
    broadcasts,
    cards,
    customers,
    events,
    imports,
    journeys,
    loyalty,
    merge,
    orders,
    receipts,
    runs,
    segments,
    simulate,
    tasks,
    unsubscribe,
)
from tropa.services.event_intake import SingleIntake
from tropa.services.events import EventRouter
from tropa.services.journeys import JourneyCatalogue
from tropa.settings import Settings

DESCRIPTION = """Events, customers, journeys and runs of Tropa, the retail journey engine.

Every request carries an API key in the `X-API-Key` header; scopes are `events:write`,
`read`, `loyalty:write`, `tasks:write` and `admin` (admin may do everything). Errors are
JSON with a `detail`; a 422 lists every invalid field with its JSON path. Bodies over
{limit} bytes get 413.
"""


def create_app(settings: Settings, engine: sa.Engine, temporal: Client) -> FastAPI:
    """The API, bound to a database and a Temporal client."""
    app = FastAPI(
        title="Tropa",
        version="0.1.0",
        description=DESCRIPTION.format(limit=settings.api.max_body_bytes),
    )
    catalogue = JourneyCatalogue(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.temporal = temporal
    app.state.catalogue = catalogue
    app.state.key_cache = {}
    app.state.event_router = EventRouter(engine, temporal, catalogue,
                                         settings.temporal.task_queue)
    app.state.event_intake = SingleIntake(app.state.event_router)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    hide_query_strings()
    errors.install(app)

    for module in (events, customers, journeys, runs, segments, loyalty):
        app.include_router(module.router)
    app.include_router(receipts.router)
    app.include_router(cards.router)
    app.include_router(orders.router)
    app.include_router(imports.router)
    app.include_router(unsubscribe.router)
    app.include_router(merge.router)
    app.include_router(tasks.router)
    app.include_router(audiences.router)
    app.include_router(broadcasts.router)
    app.include_router(simulate.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app

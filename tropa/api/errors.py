"""The error contract: every error is JSON with a `detail`; 422s add a JSON path per field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.service import RPCError, RPCStatusCode

from tropa.logs import get_logger

log = get_logger("api")


class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    path: str = Field(description="JSON path of the field, e.g. `$.events[3].occurred_at`, "
                      "or `query.phone` / `path.customer_id` / `header.X-API-Key`",
                      examples=["$.phone"])
    loc: list[str | int] = Field(description="The same place as a list, FastAPI style")
    message: str
    type: str


class ErrorOut(BaseModel):
    """An error: what went wrong and, where it helps, how to fix it."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


def json_path(loc: Sequence[str | int]) -> str:
    """`("body", "events", 3, "type")` as `$.events[3].type`; other places keep their prefix."""
    if not loc:
        return "$"
    head, *rest = loc
    if head == "body":
        out = "$"
    else:
        out = str(head)
        if not rest:
            return out
    for part in rest:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def field_errors(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[FieldError]:
    """Pydantic error dicts as FieldErrors, each with its JSON path."""
    out = []
    for err in errors:
        loc = [*prefix, *(p for p in err.get("loc", ()) if isinstance(p, str | int))]
        out.append(FieldError(path=json_path(loc), loc=loc, message=str(err.get("msg", "")),
                              type=str(err.get("type", "value_error"))))
    return out


def invalid_response(errors: list[FieldError]) -> JSONResponse:
    """A 422 that lists every invalid field."""
    first = errors[0].path if errors else "$"
    count = len(errors)
    detail = f"{count} invalid field{'s' if count != 1 else ''}, first at {first}"
    return JSONResponse(status_code=422, content=ErrorOut(detail=detail, errors=errors)
                        .model_dump(mode="json"))


class InvalidField(Exception):
    """A field the models accept but the service rejects (an unparseable phone, say)."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)
        self.message = message


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or not a valid one"},
    403: {"model": ErrorOut, "description": "The API key lacks the scope"},
    413: {"model": ErrorOut, "description": "The body is over the limit (5 MB by default)"},
    422: {"model": ErrorOut, "description": "Invalid fields, each with its JSON path"},
}


def install(app: FastAPI) -> None:
    """Register the handlers that shape every error the same way."""

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_response(field_errors(exc.errors()))

    @app.exception_handler(InvalidField)
    async def on_invalid_field(_request: Request, exc: InvalidField) -> JSONResponse:
        return invalid_response([FieldError(path=json_path(exc.loc), loc=exc.loc,
                                            message=exc.message, type="value_error")])

    @app.exception_handler(RPCError)
    async def on_temporal(_request: Request, exc: RPCError) -> JSONResponse:
        # Temporal being down or slow is not the client's fault and is worth a retry.
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                          RPCStatusCode.RESOURCE_EXHAUSTED):
            log.warning("temporal_unavailable", status=exc.status.name)
            return JSONResponse(status_code=503, headers={"Retry-After": "1"}, content={
                "detail": "Temporal is unavailable; retry the request"})
        log.error("temporal_error", status=exc.status.name, message=exc.message)
        return JSONResponse(status_code=500, content={"detail": "Temporal refused the call"})

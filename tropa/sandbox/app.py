"""Sandbox providers speaking the SMS and email provider APIs Tropa's adapters use.

Like real providers, it deduplicates by `Idempotency-Key`, answers account problems with
401/402/403 and bad messages with 400, and can be told to misbehave through
`/sandbox/faults` so tests and marketers can see what Tropa does then.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class Faults(BaseModel):
    """Misbehaviour to inject; every field off by default."""

    down: bool = Field(default=False, description="Answer every send with 503")
    account_error: str | None = Field(
        default=None, description="Answer with this account error code, e.g. "
        "sender_not_registered, bad_credentials, no_balance")
    reject_numbers: list[str] = Field(default_factory=list,
                                      description="Recipients answered with invalid_recipient")


class SmsIn(BaseModel):
    from_: str = Field(alias="from")
    to: str
    text: str
    client_ref: str | None = None


class EmailIn(BaseModel):
    from_: str = Field(alias="from")
    to: str
    subject: str | None = None
    text: str = ""
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


Auth = Annotated[str | None, Header()]
Key = Annotated[str | None, Header(alias="Idempotency-Key")]
_ACCOUNT_ERRORS = {"bad_credentials": 401, "no_balance": 402, "sender_not_registered": 403}


class Sandbox:
    """The sandbox's memory: accepted messages, every call, and the current faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.faults = Faults()
        self._ids = itertools.count(1)

    def accept(self, channel: str, key: str | None, payload: dict[str, Any]) -> JSONResponse:
        with self.lock:
            self.calls.append({"channel": channel, "to": payload["to"], "key": key,
                               "at": datetime.now(UTC).isoformat()})
            if self.faults.down:
                return _error(503, "unavailable", "the provider is down")
            if self.faults.account_error:
                code = self.faults.account_error
                return _error(_ACCOUNT_ERRORS.get(code, 403), code, f"account problem: {code}")
            if payload["to"] in self.faults.reject_numbers:
                return _error(400, "invalid_recipient", "the recipient does not exist")
            if key and key in self.by_key:
                return JSONResponse(status_code=202, content=_receipt(self.by_key[key]))
            record = {"message_id": f"sbx-{next(self._ids)}", "channel": channel,
                      "idempotency_key": key, "status": "accepted",
                      "received_at": datetime.now(UTC).isoformat(), **payload}
            self.messages.append(record)
            if key:
                self.by_key[key] = record
            return JSONResponse(status_code=202, content=_receipt(record))


def _receipt(record: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": record["message_id"], "status": record["status"]}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _check_token(authorization: str | None) -> None:
    if not authorization or not authorization.startswith("Bearer ") or len(authorization) < 8:
        raise HTTPException(401, {"code": "bad_credentials", "message": "send a Bearer token"})


def create_sandbox_app(sandbox: Sandbox | None = None) -> FastAPI:
    """The sandbox server's app; the Sandbox object can be shared with tests."""
    box = sandbox or Sandbox()
    app = FastAPI(title="Tropa sandbox providers")
    app.state.sandbox = box

    @app.post("/sms/v1/messages", status_code=202, tags=["sms"])
    def send_sms(body: SmsIn, authorization: Auth = None, idempotency_key: Key = None
                 ) -> JSONResponse:
        """Accept an SMS, as an SMS provider's API does."""
        _check_token(authorization)
        if not body.to.startswith("+") or not body.to[1:].isdigit():
            return _error(400, "invalid_recipient", "recipient must be in E.164")
        if not body.text.strip():
            return _error(400, "empty_text", "the text is empty")
        return box.accept("sms", idempotency_key,
                          {"from": body.from_, "to": body.to, "text": body.text})

    @app.post("/email/v1/messages", status_code=202, tags=["email"])
    def send_email(body: EmailIn, authorization: Auth = None, idempotency_key: Key = None
                   ) -> JSONResponse:
        """Accept an email, as an email provider's API does."""
        _check_token(authorization)
        if "@" not in body.to:
            return _error(400, "invalid_recipient", "not an email address")
        return box.accept("email", idempotency_key, body.model_dump(by_alias=True))

    @app.get("/sandbox/messages", tags=["sandbox"])
    def list_messages(channel: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        """What would have been sent, oldest first (each message once)."""
        with box.lock:
            return [m for m in box.messages
                    if (channel is None or m["channel"] == channel)
                    and (to is None or m["to"] == to)]

    @app.get("/sandbox/calls", tags=["sandbox"])
    def list_calls() -> list[dict[str, Any]]:
        """Every send call, failed ones included."""
        with box.lock:
            return list(box.calls)

    @app.put("/sandbox/faults", tags=["sandbox"])
    def set_faults(faults: Faults) -> Faults:
        """Make the providers misbehave (or behave again)."""
        box.faults = faults
        return faults

    @app.delete("/sandbox/messages", status_code=204, tags=["sandbox"])
    def reset() -> None:
        """Forget every message and call."""
        with box.lock:
            box.messages.clear()
            box.by_key.clear()
            box.calls.clear()

    return app

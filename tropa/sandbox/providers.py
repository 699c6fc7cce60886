"""The provider shapes the sandbox speaks, each answering faults the way that provider does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tropa.sandbox.state import Sandbox, Verdict

Auth = Annotated[str | None, Header()]
Key = Annotated[str | None, Header(alias="Idempotency-Key")]
_ACCOUNT_HTTP = {"bad_credentials": 401, "no_balance": 402, "sender_not_registered": 403}
# Vonage SMS API status codes for the same account troubles.
_VONAGE = {"bad_credentials": ("4", "Bad Credentials"), "no_balance": ("9", "Quota Exceeded"),
           "sender_not_registered": ("15", "Illegal Sender Address - rejected")}


class SmsIn(BaseModel):
    from_: str = Field(alias="from")
    to: str
    text: str
    client_ref: str | None = None
    callback_url: str | None = None


class EmailIn(BaseModel):
    from_: str = Field(alias="from")
    to: str
    subject: str | None = None
    text: str = ""
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _generic(verdict: Verdict) -> JSONResponse:
    """The generic JSON shape: 202 with an id, 400 content, 401-403 account, 503 down."""
    if verdict.kind == "down":
        return _error(503, "unavailable", "the provider is down")
    if verdict.kind == "account":
        return _error(_ACCOUNT_HTTP.get(verdict.code, 403), verdict.code,
                      f"account problem: {verdict.code}")
    if verdict.kind == "reject":
        return _error(400, "invalid_recipient", "the recipient does not exist")
    assert verdict.record is not None
    return JSONResponse(status_code=202, content={"message_id": verdict.record["message_id"],
                                                  "status": verdict.record["status"]})


def _check_token(authorization: str | None) -> None:
    if not authorization or not authorization.startswith("Bearer ") or len(authorization) < 8:
        raise HTTPException(401, {"code": "bad_credentials", "message": "send a Bearer token"})


def provider_router(box: Sandbox) -> APIRouter:
    """Routes of every provider shape, bound to one sandbox memory."""
    r = APIRouter()

    @r.post("/sms/json", tags=["sms"])
    async def vonage_sms(request: Request) -> JSONResponse:
        """Vonage SMS API: form or JSON; HTTP 200 with a status code per message."""
        if request.headers.get("content-type", "").startswith("application/json"):
            form: dict[str, Any] = await request.json()
        else:
            form = dict(await request.form())
        if not form.get("api_key") or not form.get("api_secret"):
            return _vonage("4", "Bad Credentials")
        to, text = str(form.get("to") or ""), str(form.get("text") or "")
        if not to.isdigit():
            return _vonage("3", "Invalid to number")
        if not text:
            return _vonage("2", "Missing text param")
        verdict = await run_in_threadpool(
            box.accept, "sms", str(form.get("client-ref") or "") or None,
            {"shape": "vonage", "from": form.get("from"), "to": f"+{to}", "text": text,
             "type": form.get("type", "text")}, form.get("callback"))
        if verdict.kind == "down":
            return JSONResponse(status_code=503, content={"error": "service unavailable"})
        if verdict.kind == "account":
            return _vonage(*_VONAGE.get(verdict.code, ("8", "Partner account barred")))
        if verdict.kind == "reject":
            return _vonage("6", "Invalid Message: unroutable number")
        assert verdict.record is not None
        return JSONResponse({"message-count": "1", "messages": [
            {"to": to, "message-id": verdict.record["message_id"], "status": "0",
             "remaining-balance": "100.00", "message-price": "0.03", "network": "25001"}]})

    @r.post("/sms/v1/messages", status_code=202, tags=["sms"])
    def send_sms(body: SmsIn, authorization: Auth = None, idempotency_key: Key = None
                 ) -> JSONResponse:
        """A generic JSON SMS API."""
        _check_token(authorization)
        if not body.to.startswith("+") or not body.to[1:].isdigit():
            return _error(400, "invalid_recipient", "recipient must be in E.164")
        if not body.text.strip():
            return _error(400, "empty_text", "the text is empty")
        return _generic(box.accept("sms", idempotency_key,
                                   {"shape": "generic", "from": body.from_, "to": body.to,
                                    "text": body.text}, body.callback_url))

    @r.post("/email/v1/messages", status_code=202, tags=["email"])
    def send_email(body: EmailIn, authorization: Auth = None, idempotency_key: Key = None
                   ) -> JSONResponse:
        """An email provider's HTTP API."""
        _check_token(authorization)
        if "@" not in body.to:
            return _error(400, "invalid_recipient", "not an email address")
        return _generic(box.accept("email", idempotency_key, body.model_dump(by_alias=True)))

    @r.post("/bot{token}/sendMessage", tags=["telegram"])
    def telegram(body: dict[str, Any], idempotency_key: Key = None) -> JSONResponse:
        """Telegram Bot API sendMessage."""
        verdict = box.accept("telegram", idempotency_key,
                             {"to": str(body.get("chat_id")), "text": body.get("text", "")})
        if verdict.kind in ("down", "account"):
            status = 502 if verdict.kind == "down" else 401
            return JSONResponse(status_code=status, content={
                "ok": False, "error_code": status, "description": verdict.code})
        if verdict.kind == "reject":
            return JSONResponse(status_code=400, content={
                "ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        assert verdict.record is not None
        number = int(verdict.record["message_id"].removeprefix("sbx-"))
        return JSONResponse({"ok": True, "result": {"message_id": number,
                                                    "chat": {"id": body.get("chat_id")},
                                                    "text": body.get("text")}})

    @r.post("/v1/projects/{project}/messages:send", tags=["push"])
    def fcm(project: str, body: dict[str, Any], authorization: Auth = None,
            idempotency_key: Key = None) -> JSONResponse:
        """FCM HTTP v1 messages:send."""
        _check_token(authorization)
        message = body.get("message", {})
        note = message.get("notification", {})
        verdict = box.accept("push", idempotency_key,
                             {"to": message.get("token"), "title": note.get("title"),
                              "text": note.get("body", "")})
        if verdict.kind != "ok" or verdict.record is None:
            status, word = {"down": (503, "UNAVAILABLE"), "account": (401, "UNAUTHENTICATED"),
                            "reject": (404, "UNREGISTERED")}[verdict.kind]
            return JSONResponse(status_code=status, content={"error": {
                "code": status, "status": word, "message": word}})
        return JSONResponse({"name": f"projects/{project}/messages/{verdict.record['message_id']}"})

    @r.post("/voice/v1/calls", status_code=202, tags=["voice"])
    def call(body: dict[str, Any], authorization: Auth = None, idempotency_key: Key = None
             ) -> JSONResponse:
        """A robot call that reads `tts`."""
        _check_token(authorization)
        return _call(box.accept("voice", idempotency_key,
                                {"to": body.get("to"), "text": body.get("tts", ""),
                                 "connect_to": body.get("connect_to")}))

    @r.post("/voice/v1/flashcalls", status_code=202, tags=["voice"])
    def flashcall(body: dict[str, Any], authorization: Auth = None,
                  idempotency_key: Key = None) -> JSONResponse:
        """A flash call; the code is the caller number's last four digits."""
        _check_token(authorization)
        return _call(box.accept("flash_call", idempotency_key, {"to": body.get("to"),
                                                                "text": ""}))

    @r.post("/{version}/{phone_number_id}/messages", tags=["whatsapp"])
    def whatsapp(body: dict[str, Any], authorization: Auth = None,
                 idempotency_key: Key = None) -> JSONResponse:
        """WhatsApp Cloud API messages."""
        _check_token(authorization)
        to = str(body.get("to", ""))
        kind = body.get("type")
        text = body.get("text", {}).get("body", "") if kind == "text" else ""
        payload = {"shape": "whatsapp", "to": f"+{to}", "type": kind, "text": text,
                   "template": body.get("template")}
        verdict = box.accept("whatsapp", idempotency_key, payload, box.faults.whatsapp_webhook)
        if verdict.kind != "ok" or verdict.record is None:
            status, code = {"down": (503, 131000), "account": (401, 190),
                            "reject": (400, 131026)}[verdict.kind]
            return JSONResponse(status_code=status, content={"error": {
                "message": verdict.code, "type": "OAuthException", "code": code}})
        return JSONResponse({"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": to}],
                             "messages": [{"id": verdict.record["message_id"]}]})

    return r


def _vonage(status: str, text: str) -> JSONResponse:
    return JSONResponse({"message-count": "1",
                         "messages": [{"status": status, "error-text": text}]})


def _call(verdict: Verdict) -> JSONResponse:
    response = _generic(verdict)
    if verdict.kind == "ok" and verdict.record is not None:
        return JSONResponse(status_code=202, content={"call_id": verdict.record["message_id"]})
    return response

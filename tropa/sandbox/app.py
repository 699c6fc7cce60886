"""Sandbox providers: every provider shape Tropa's adapters speak, in one server.

Like real providers, it deduplicates by idempotency key, answers account problems and bad
messages the way each provider does, posts delivery receipts back, and can be told to
misbehave through `PUT /sandbox/faults`, so tests and marketers can see what Tropa does.
`GET /sandbox` shows what would have been sent.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from tropa.sandbox.providers import provider_router
from tropa.sandbox.state import Faults, ReceiptWord, Sandbox

__all__ = ["Faults", "Sandbox", "create_sandbox_app"]


class ReceiptOrder(BaseModel):
    """Post a receipt for an accepted message now (to its callback, or to `url`)."""

    message_id: str
    status: ReceiptWord = "delivered"
    url: str | None = None


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """A message as the open listing shows it: without the credentials it carries (the
    callback URL's receipt token, the unsubscribe token of List-Unsubscribe)."""
    shown = dict(record)
    if shown.get("callback"):
        shown["callback"] = str(shown["callback"]).split("?", 1)[0]
    headers = shown.get("headers")
    if isinstance(headers, dict) and "List-Unsubscribe" in headers:
        shown["headers"] = {**headers, "List-Unsubscribe": "(hidden: it holds the "
                            "customer's unsubscribe token)"}
    return shown


def create_sandbox_app(sandbox: Sandbox | None = None) -> FastAPI:
    """The sandbox server's app; the Sandbox object can be shared with tests."""
    box = sandbox or Sandbox()
    app = FastAPI(title="Tropa sandbox providers")
    app.state.sandbox = box

    @app.get("/sandbox/messages", tags=["sandbox"])
    def list_messages(channel: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        """What would have been sent, oldest first (each message once)."""
        with box.lock:
            return [_shown(m) for m in box.messages
                    if (channel is None or m["channel"] == channel)
                    and (to is None or m["to"] == to)]

    @app.get("/sandbox", response_class=HTMLResponse, tags=["sandbox"])
    def page() -> str:
        """A page for marketers: every message that would have been sent, newest first."""
        with box.lock:
            rows = "".join(
                f"<tr><td>{html.escape(str(m['received_at']))}</td>"
                f"<td>{html.escape(str(m['channel']))}</td><td>{html.escape(str(m['to']))}</td>"
                f"<td>{html.escape(str(m.get('subject') or ''))}</td>"
                f"<td>{html.escape(str(m.get('text') or m.get('template') or ''))}</td>"
                f"<td>{html.escape(str(m['status']))}</td></tr>"
                for m in reversed(box.messages))
        return ("<!doctype html><meta charset=utf-8><title>Tropa sandbox</title>"
                "<h1>Messages that would have been sent</h1><table border=1 cellpadding=4>"
                "<tr><th>received</th><th>channel</th><th>to</th><th>subject</th><th>text</th>"
                f"<th>status</th></tr>{rows}</table>")

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

    @app.post("/sandbox/receipts", status_code=202, tags=["sandbox"])
    def post_receipt(order: ReceiptOrder) -> dict[str, str]:
        """Post a delivery receipt for an accepted message, as its provider would."""
        with box.lock:
            record = next((m for m in box.messages if m["message_id"] == order.message_id), None)
        url = order.url or (record or {}).get("callback")
        if record is None or not url:
            raise HTTPException(404, "no such message, or it asked for no receipt; give `url`")
        box.post_receipt(record, order.status, url)
        return {"status": "queued"}

    @app.delete("/sandbox/messages", status_code=204, tags=["sandbox"])
    def reset() -> None:
        """Forget every message and call, and clear the faults."""
        box.reset()

    @app.api_route("/sandbox/webhooks", methods=["POST", "PUT", "PATCH", "DELETE"],
                   tags=["sandbox"])
    async def webhook(request: Request) -> dict[str, str]:
        """Take a webhook call sent here instead of its receiver (`webhook.sink_url`); it is
        kept with the messages, its URL as the recipient, its body as the text."""
        body = (await request.body()).decode("utf-8", errors="replace")
        verdict = box.accept("webhook", request.headers.get("Idempotency-Key"), {
            "to": request.headers.get("X-Tropa-Webhook-Url", ""), "text": body,
            "method": request.method})
        if verdict.kind != "ok":
            raise HTTPException(503, f"the receiver is unavailable ({verdict.kind})")
        return {"status": "accepted", "message_id": str((verdict.record or {}).get(
            "message_id", ""))}

    app.include_router(provider_router(box))
    return app

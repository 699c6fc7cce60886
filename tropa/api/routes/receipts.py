"""Delivery receipts from providers: into the message log, then to the waiting run."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError, RPCStatusCode

from tropa.channels.receipts import parse
from tropa.delivery.callback import token_message
from tropa.delivery.models import ReceiptSignal
from tropa.delivery.receipts import record_receipt, signature_ok
from tropa.logs import get_logger

router = APIRouter(prefix="/v1/providers", tags=["providers"])
log = get_logger("receipts")


@router.post("/{provider}/receipts")
async def receive_receipts(provider: str, request: Request) -> dict[str, Any]:
    """Take a provider's delivery receipts for waiting runs (signed body or callback token)."""
    raw = await request.body()
    secret = request.app.state.settings.delivery.receipts_secret.get_secret_value()
    # A signed body may speak of any message of this provider; a callback URL's token
    # only of the one message it was made for.
    message_id = None
    if not signature_ok(secret, raw, request.headers.get("X-Tropa-Signature")):
        message_id = token_message(secret, provider, request.query_params.get("m"),
                                   request.query_params.get("token"))
        if message_id is None:
            raise HTTPException(401, "receipt not authenticated: send X-Tropa-Signature "
                                "(HMAC-SHA256 of the body with TROPA_DELIVERY_RECEIPTS_SECRET, "
                                "`sha256=<hex>`) or post to the callback URL Tropa gave the "
                                "provider with the message, as it is")
    try:
        payload = json.loads(raw) if raw else {}
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        receipts = parse(provider, payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HTTPException(400, f"not a {provider} receipt: {exc}") from exc
    engine = request.app.state.engine
    temporal = request.app.state.temporal
    recorded = 0
    for receipt in receipts:
        if receipt.state == "pending":
            continue
        workflow_id = await run_in_threadpool(record_receipt, engine, provider, receipt,
                                              message_id)
        if workflow_id is None:
            # Not known yet (the provider can be faster than our commit) or never: a 404
            # makes the provider post it again later.
            raise HTTPException(404, f"no {provider} message with provider id "
                                f"{receipt.provider_message_id}")
        try:
            await temporal.get_workflow_handle(workflow_id).signal(
                "receipt", ReceiptSignal(provider_message_id=receipt.provider_message_id,
                                         state=receipt.state, reason=receipt.reason))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # The run has ended; the message log has the receipt, which is what counts.
        recorded += 1
        log.info("receipt_recorded", provider=provider, state=receipt.state)
    return {"status": "ok", "recorded": recorded}

"""Delivery receipts in each provider's shape, read into one `Receipt` form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Vonage DLR `err-code`s after `failed`/`expired` that will not improve with a new attempt.
_VONAGE_FINAL_ERRORS = {"3", "4", "6", "9", "10", "11", "13", "14"}


class Receipt(BaseModel):
    """One receipt: the provider's message id and whether the message reached the phone.

    `state` is delivered, undelivered (temporary: a new attempt may succeed) or rejected
    (final); `pending` receipts (accepted, buffered) change nothing.
    """

    provider_message_id: str
    state: str
    reason: str = ""


def parse(provider: str, payload: dict[str, Any]) -> list[Receipt]:
    """The receipts in one webhook call; an unknown shape gives a ValueError naming it."""
    if provider == "vonage":
        return [_vonage(payload)]
    if provider == "whatsapp":
        return _whatsapp(payload)
    if provider == "generic":
        state = {"delivered": "delivered", "undelivered": "undelivered",
                 "rejected": "rejected"}.get(str(payload.get("status")), "pending")
        return [Receipt(provider_message_id=str(payload["message_id"]), state=state,
                        reason=str(payload.get("reason") or ""))]
    raise ValueError(f"unknown provider {provider!r}; use vonage, whatsapp or generic")


def _vonage(payload: dict[str, Any]) -> Receipt:
    status = str(payload.get("status", ""))
    error = str(payload.get("err-code", "0"))
    message_id = str(payload.get("messageId") or payload.get("message-id") or "")
    if not message_id:
        raise ValueError("a Vonage receipt needs `messageId`")
    if status == "delivered":
        return Receipt(provider_message_id=message_id, state="delivered")
    if status == "rejected" or (status in ("failed", "expired") and error in _VONAGE_FINAL_ERRORS):
        return Receipt(provider_message_id=message_id, state="rejected",
                       reason=f"vonage_{status}_{error}")
    if status in ("failed", "expired"):
        return Receipt(provider_message_id=message_id, state="undelivered",
                       reason=f"vonage_{status}_{error}")
    return Receipt(provider_message_id=message_id, state="pending", reason=status)


def _whatsapp(payload: dict[str, Any]) -> list[Receipt]:
    found = []
    for entry in payload.get("entry", []):
        for change in entry.get("changes", []):
            for status in change.get("value", {}).get("statuses", []):
                word = str(status.get("status"))
                state = {"delivered": "delivered", "read": "delivered",
                         "failed": "rejected"}.get(word, "pending")
                errors = status.get("errors") or [{}]
                found.append(Receipt(provider_message_id=str(status["id"]), state=state,
                                     reason=str(errors[0].get("code", "")) if state != "delivered"
                                     else ""))
    return found

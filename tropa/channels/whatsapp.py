"""WhatsApp Business Cloud API: `POST {base}/{version}/{phone_number_id}/messages`.

Template messages may go any time; free-form text only within 24 hours of the customer's
last inbound message (the "customer service window"), which the send path checks first.
"""

from __future__ import annotations

from typing import Any

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, answer_id, post_json
from tropa.errors import MessageInvalid, ProviderUnavailable

# Graph API error codes that mean the message itself cannot go.
FINAL = {
    131026: "undeliverable_recipient", 131047: "outside_24h_window",
    131051: "unsupported_type", 132000: "template_params_mismatch",
    132001: "template_not_found", 132005: "template_text_too_long", 100: "invalid_params",
}


class WhatsAppAdapter:
    """Template or text messages through the WhatsApp Cloud API."""

    channel = "whatsapp"
    provider = "whatsapp"

    def __init__(self, client: httpx.Client, base_url: str, version: str,
                 phone_number_id: str, token: str) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/messages"
        self._token = token

    def validate(self, message: OutgoingMessage) -> None:
        """A template needs a name; free text needs a body and an open 24-hour window."""
        template = message.options.get("template")
        if template:
            return
        if not message.text.strip():
            raise MessageInvalid("the WhatsApp text is empty", reason="empty_text")
        if not message.options.get("window_open"):
            raise MessageInvalid(
                "free-form WhatsApp text can only be sent within 24 hours of the customer's "
                "last message; give `template:` (an approved template) instead",
                reason="template_required")

    def body(self, message: OutgoingMessage) -> dict[str, Any]:
        """The Cloud API request body."""
        to = message.recipient.lstrip("+")
        template = message.options.get("template")
        if not template:
            return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                    "type": "text", "text": {"preview_url": False, "body": message.text}}
        params = [{"type": "text", "text": str(p)} for p in message.options.get("params", [])]
        return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                "type": "template",
                "template": {"name": template,
                             "language": {"code": message.options.get("language", "ru")},
                             "components": [{"type": "body", "parameters": params}]
                             if params else []}}

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand one message to the Cloud API and sort Graph API errors."""
        response = post_json(self._client, self._url, token=self._token,
                             idempotency_key=message.provider_ref(), body=self.body(message))
        if response.is_success:
            return Accepted(provider_message_id=answer_id(response, "messages", 0, "id"),
                            provider=self.provider)
        try:
            error = response.json().get("error", {})
            code = int(error.get("code", 0))
        except (ValueError, AttributeError, TypeError):
            error, code = {}, 0
        text = str(error.get("message") or response.reason_phrase)
        if code in FINAL:
            raise MessageInvalid(f"WhatsApp refused the message: {text}", reason=FINAL[code])
        # 190 token expired, 131056/130429 rate limits, 131000 and 5xx: fixable or transient.
        raise ProviderUnavailable(f"WhatsApp unavailable ({response.status_code}, {code})",
                                  reason=f"whatsapp_{code or response.status_code}")

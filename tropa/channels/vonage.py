"""SMS through the Vonage (Nexmo) SMS API: `POST {base}/sms/json`.

Vonage answers HTTP 200 with a per-message `status` code; the code, not the HTTP status,
says whether the message itself is wrong (final) or the account or network is (retry).
"""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, post_json, raise_for_provider
from tropa.channels.sms import check_sms, is_gsm7
from tropa.errors import MessageInvalid, ProviderAnswerInvalid, ProviderUnavailable

# Vonage SMS API status codes: the message's own fault, never retried.
FINAL = {
    "2": "missing_params", "3": "invalid_params", "6": "invalid_recipient",
    "7": "number_barred", "12": "text_too_long", "29": "invalid_recipient",
    "33": "invalid_recipient",
}
# The sender's account or the provider: fixed by the shop or by time, so retried.
RETRY = {
    "1": "throttled", "4": "bad_credentials", "5": "provider_error", "8": "account_barred",
    "9": "no_balance", "10": "throttled", "11": "account_not_enabled", "14": "bad_signature",
    "15": "sender_not_registered", "22": "provider_error", "32": "bad_signature",
}


class VonageSmsAdapter:
    """SMS via Vonage; `client-ref` carries the idempotency reference, `callback` the
    receipt URL when Tropa waits for delivery receipts."""

    channel = "sms"
    provider = "vonage"

    def __init__(self, client: httpx.Client, base_url: str, api_key: str, api_secret: str,
                 sender: str, max_segments: int) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/sms/json"
        self._key = api_key
        self._secret = api_secret
        self._sender = sender
        self._max_segments = max_segments

    def validate(self, message: OutgoingMessage) -> None:
        """Empty and too long texts are the message's own fault: cancel, never retry."""
        check_sms(message.text, self._max_segments)

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand one SMS to Vonage and sort its status code."""
        body: dict[str, object] = {
            "api_key": self._key,
            "api_secret": self._secret,
            "from": self._sender,
            "to": message.recipient.lstrip("+"),
            "text": message.text,
            "type": "text" if is_gsm7(message.text) else "unicode",
            "client-ref": message.provider_ref(),
        }
        callback = message.options.get("receipt_url")
        if callback:
            body["callback"] = callback
            body["status-report-req"] = True
        response = post_json(self._client, self._url, token=None,
                             idempotency_key=message.provider_ref(), body=body)
        raise_for_provider(response)
        try:
            first = response.json()["messages"][0]
            status = str(first["status"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # A 200 Tropa cannot read: asking again could send twice, so it is final.
            raise ProviderAnswerInvalid("provider answered without a message status",
                                        reason="bad_answer") from exc
        if status == "0":
            if not first.get("message-id"):
                raise ProviderAnswerInvalid("provider accepted without a message id")
            return Accepted(provider_message_id=str(first["message-id"]), provider=self.provider)
        text = str(first.get("error-text") or f"status {status}")
        if status in FINAL:
            raise MessageInvalid(f"provider rejected the message: {text}", reason=FINAL[status])
        raise ProviderUnavailable(f"provider refused for now: {text}",
                                  reason=RETRY.get(status, f"status_{status}"))

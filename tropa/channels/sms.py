"""SMS over the provider's JSON HTTP API, with GSM-7 / UCS-2 segment counting."""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, answer_id, post_json, raise_for_provider
from tropa.errors import MessageInvalid

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    """Whether the text fits the GSM-7 alphabet; anything else (Cyrillic) goes as UCS-2."""
    return all(c in _GSM7 or c in _GSM7_EXT for c in text)


def check_sms(text: str, max_segments: int) -> None:
    """Raise MessageInvalid for an empty text or one longer than `max_segments` parts."""
    if not text.strip():
        raise MessageInvalid("the SMS text is empty", reason="empty_text")
    parts = segments(text)
    if parts > max_segments:
        raise MessageInvalid(
            f"the SMS takes {parts} segments, more than the allowed {max_segments}; "
            "shorten the text or raise TROPA_PROVIDER_SMS_MAX_SEGMENTS",
            reason="text_too_long",
        )


def segments(text: str) -> int:
    """How many SMS parts a text takes: GSM-7 160/153, UCS-2 (e.g. Cyrillic) 70/67."""
    if is_gsm7(text):
        units = sum(2 if c in _GSM7_EXT else 1 for c in text)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji takes two.
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


class SmsAdapter:
    """SMS through a generic JSON provider API: `POST {base}/sms/v1/messages`."""

    channel = "sms"
    provider = "generic"

    def __init__(
        self, client: httpx.Client, base_url: str, token: str, sender: str, max_segments: int
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/sms/v1/messages"
        self._token = token
        self._sender = sender
        self._max_segments = max_segments

    def validate(self, message: OutgoingMessage) -> None:
        """Empty and too long texts are the message's own fault: cancel, never retry."""
        check_sms(message.text, self._max_segments)

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand one SMS to the provider."""
        response = post_json(
            self._client,
            self._url,
            token=self._token,
            idempotency_key=message.idempotency_key,
            body={
                "from": self._sender,
                "to": message.recipient,
                "text": message.text,
                "client_ref": message.idempotency_key,
                "callback_url": message.options.get("receipt_url"),
            },
        )
        raise_for_provider(response)
        return Accepted(provider_message_id=answer_id(response, "message_id"),
                        provider=self.provider)

"""Telegram Bot API `sendMessage`: `POST {base}/bot<token>/sendMessage`.

The token is part of the URL, so no error text here ever includes the URL.
"""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, post_json
from tropa.errors import MessageInvalid, ProviderUnavailable

_MAX_TEXT = 4096


class TelegramAdapter:
    """Text messages from the shop's bot to a chat the customer opened with it."""

    channel = "telegram"
    provider = "telegram"

    def __init__(self, client: httpx.Client, base_url: str, token: str) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/bot{token}/sendMessage"

    def validate(self, message: OutgoingMessage) -> None:
        """Telegram takes 1 to 4096 characters."""
        if not message.text.strip():
            raise MessageInvalid("the Telegram text is empty", reason="empty_text")
        if len(message.text) > _MAX_TEXT:
            raise MessageInvalid(f"the Telegram text is longer than {_MAX_TEXT} characters",
                                 reason="text_too_long")

    def send(self, message: OutgoingMessage) -> Accepted:
        """Send; 400 and 403 (chat not found, bot blocked) are final, the rest retries."""
        response = post_json(self._client, self._url, token=None,
                             idempotency_key=message.provider_ref(),
                             body={"chat_id": message.recipient, "text": message.text,
                                   "disable_web_page_preview": True})
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.is_success and answer.get("ok"):
            result = answer["result"]
            return Accepted(provider_message_id=f"{result['chat']['id']}:{result['message_id']}",
                            provider=self.provider)
        description = str(answer.get("description") or response.reason_phrase)
        if response.status_code in (400, 403):
            reason = "bot_blocked" if response.status_code == 403 else "invalid_recipient"
            raise MessageInvalid(f"Telegram refused the message: {description}", reason=reason)
        raise ProviderUnavailable(f"Telegram unavailable ({response.status_code})",
                                  reason=f"telegram_{response.status_code}")

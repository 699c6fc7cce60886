"""Callback URL tokens: how receipts from providers that do not sign them are trusted.

Providers such as Vonage post delivery receipts without a signature Tropa can check; the
callback URL they were handed with the message carries a token instead. The token is made
for one message of one provider (HMAC-SHA256 of both with the receipts key), so a URL
that leaks (a log, a screen) lets nobody touch any other message.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def callback_token(secret: str, provider: str, message_id: int) -> str:
    """The token of one message's callback URL at one provider."""
    return hmac.new(secret.encode(), f"receipts\x00{provider}\x00{message_id}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def callback_url(base: str, secret: str, provider: str, message_id: int) -> str:
    """The URL a provider posts this message's receipts to."""
    query = urlencode({"m": message_id, "token": callback_token(secret, provider, message_id)})
    return f"{base.rstrip('/')}/v1/providers/{provider}/receipts?{query}"


def token_message(secret: str, provider: str, message: str | None, token: str | None
                  ) -> int | None:
    """The message a callback URL's `m` and `token` were made for, or None when they do
    not belong together."""
    if not token or not message or not message.isascii() or not message.isdigit() \
            or len(message) > 18:
        return None
    message_id = int(message)
    if not hmac.compare_digest(callback_token(secret, provider, message_id), token):
        return None
    return message_id

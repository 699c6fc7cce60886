"""Callback URL tokens: how receipts from providers that do not sign them are trusted."""

from __future__ import annotations

import hashlib
import hmac


def callback_token(secret: str, provider: str) -> str:
    """The token Tropa puts in the callback URL it gives a provider.

    Providers such as Vonage post delivery receipts without a signature Tropa can check;
    the callback URL they were handed carries this token instead, so only the provider
    that got the URL (over TLS) can post receipts."""
    return hmac.new(secret.encode(), f"receipts:{provider}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def token_ok(secret: str, provider: str, token: str | None) -> bool:
    """Whether a callback URL token is the one made for this provider."""
    return bool(token) and hmac.compare_digest(callback_token(secret, provider), token or "")

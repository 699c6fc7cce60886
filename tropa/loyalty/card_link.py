"""Wallet card links: a URL from a configurable pattern with a signed per-customer token."""

from __future__ import annotations

import base64
import hashlib
import hmac

from tropa.settings import LoyaltySettings


def _sign(customer_id: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"card:{customer_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")


def card_token(customer_id: str, secret: str) -> str:
    """`<customer id, base64url>.<HMAC-SHA256, 16 bytes>`: opaque to the customer."""
    encoded = base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")
    return f"{encoded}.{_sign(customer_id, secret)}"


def verify_card_token(token: str, secret: str) -> str | None:
    """The customer id of a valid token, or None."""
    encoded, _, signature = token.partition(".")
    try:
        customer_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if hmac.compare_digest(signature, _sign(customer_id, secret)):
        return customer_id
    return None


def card_link(customer_id: str, settings: LoyaltySettings) -> str:
    """`customer.card_link`: the pattern with `{token}` filled in."""
    token = card_token(customer_id, settings.card_link_secret.get_secret_value())
    return settings.card_link_pattern.replace("{token}", token)

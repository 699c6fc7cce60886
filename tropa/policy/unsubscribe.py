"""Unsubscribe tokens: one per customer and channel, signed with the unsubscribe key.

A token is `<customer id>.<channel>.<signature>`: it names the customer by id (never a
phone or email) and the signature (HMAC-SHA256 with TROPA_PROVIDER_UNSUBSCRIBE_SECRET, 128
bits) cannot be made for another customer or channel without the key. The token is the
credential of the unsubscribe routes, which need no API key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{32}$")
MAX_TOKEN = 200


class TokenInvalid(ValueError):
    """A token that was not made by this Tropa (forged, cut short or for another key)."""


@dataclass(frozen=True)
class Unsubscriber:
    """Whom a valid token names, and for which channel."""

    customer_id: str
    channel: str


def _signature(secret: str, customer_id: str, channel: str) -> str:
    message = f"unsubscribe\x00{customer_id}\x00{channel}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def make_token(secret: str, customer_id: str, channel: str) -> str:
    """The token of one customer's marketing on one channel."""
    return f"{customer_id}.{channel}.{_signature(secret, customer_id, channel)}"


def read_token(secret: str, token: str) -> Unsubscriber:
    """Whom the token names; TokenInvalid when it is not one this key made."""
    parts = token.rsplit(".", 2) if len(token) <= MAX_TOKEN else []
    if len(parts) != 3 or not parts[0] or not _CHANNEL.match(parts[1]) \
            or not _SIGNATURE.match(parts[2]):
        raise TokenInvalid("not an unsubscribe token")
    customer_id, channel, signature = parts
    if not hmac.compare_digest(_signature(secret, customer_id, channel), signature):
        raise TokenInvalid("the unsubscribe token is not valid")
    return Unsubscriber(customer_id=customer_id, channel=channel)


def list_unsubscribe(secret: str, url: str, mailto: str, customer_id: str,
                     channel: str = "email") -> dict[str, str]:
    """`List-Unsubscribe` (the one-click URL and a mailbox) and `List-Unsubscribe-Post`
    (RFC 8058) for one customer's marketing mail."""
    token = quote(make_token(secret, customer_id, channel), safe="")
    separator = "&" if "?" in url else "?"
    links = [f"<{url}{separator}t={token}>"]
    if mailto:
        links.append(f"<mailto:{mailto}?subject=unsubscribe-{token}>")
    return {"List-Unsubscribe": ", ".join(links),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

"""Consent: marketing needs the customer's yes for that channel; service messages do not."""

from __future__ import annotations

from tropa.store.models import Customer

# Channels that reach the customer's phone number; `phone_verified` applies to them.
_PHONE_CHANNELS = {"sms", "whatsapp", "voice", "flash_call"}


def consent_problem(customer: Customer, channel: str, category: str) -> str | None:
    """Why the message may not go (a sentence), or None when consent allows it."""
    if category != "marketing":
        return None
    if customer.consents.get("marketing", {}).get(channel):
        return None
    return f"no marketing consent for {channel}; the message was not sent"


def unverified_problem(customer: Customer, channel: str, send_to_unverified: bool) -> str | None:
    """Why an unverified contact may not be used, when the setting forbids it."""
    if send_to_unverified:
        return None
    if channel in _PHONE_CHANNELS and not customer.phone_verified:
        return "the phone number is not verified and TROPA_POLICY_SEND_TO_UNVERIFIED is off"
    if channel == "email" and not customer.email_verified:
        return "the email address is not verified and TROPA_POLICY_SEND_TO_UNVERIFIED is off"
    return None

"""Phone and email normalisation: E.164 via phonenumbers, addresses via email-validator."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ContactInvalid(ValueError):
    """A phone or email that cannot be used; the message says why."""


def normalise_phone(raw: str, default_region: str = "RU") -> str:
    """A phone in E.164 (`+79161234567`) from any of the usual national formats."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ContactInvalid(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ContactInvalid("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """A syntactically valid address, domain lower-cased; no DNS look-ups."""
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # The library may quote parts of the address; the text reaches run histories.
        text = str(exc)
        for part in sorted({raw, *raw.split("@")}, key=len, reverse=True):
            if len(part) >= 3:
                text = text.replace(part, "…")
        raise ContactInvalid(text) from None

"""Phone and email normalisation for bulk imports: the same results as `tropa.contacts`, with a
shortcut for the common already-clean forms (an import spends most of its time here)."""

from __future__ import annotations

import re

import phonenumbers

from tropa.contacts import normalise_email, normalise_phone

_E164 = re.compile(r"^\+([1-9]\d{7,14})$")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = re.compile(rf"^({_ATOM}(?:\.{_ATOM})*)@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}"
                    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$")
_SPECIAL = ("arpa", "invalid", "local", "localhost", "onion", "test", "internal", "lan",
            "home", "corp", "example", "intranet", "private", "mail")


def phone(raw: str) -> str:
    """E.164, as `normalise_phone`; ContactInvalid otherwise."""
    m = _E164.match(raw)
    if m is not None:
        digits = m.group(1)
        for size in (1, 2, 3):
            code = int(digits[:size])
            if phonenumbers.region_code_for_country_code(code) != "ZZ":
                number = phonenumbers.PhoneNumber(country_code=code,
                                                  national_number=int(digits[size:]))
                if digits[size:size + 1] != "0" and phonenumbers.is_valid_number(number):
                    return raw
                break
    return normalise_phone(raw)


def email(raw: str) -> str:
    """Normalised as `normalise_email` (domain lower-cased); ContactInvalid otherwise."""
    m = _EMAIL.match(raw)
    if m is not None and len(m.group(1)) <= 64 and len(raw) <= 254:
        domain = m.group(2).lower()
        if domain.rsplit(".", 1)[-1] not in _SPECIAL:
            return f"{m.group(1)}@{domain}"
    return normalise_email(raw)

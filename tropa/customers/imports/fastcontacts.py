"""Phone and email normalisation for bulk imports: the same results as `tropa.contacts`, with a
shortcut for the common already-clean forms (an import spends most of its time here).

The shortcuts take only what the libraries would pass through unchanged (E.164 with no national
prefix the parser would strip; plain ASCII addresses); anything else goes to the libraries.
tests/test_fastcontacts.py compares both on generated inputs.
"""

from __future__ import annotations

import functools
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
            region = phonenumbers.region_code_for_country_code(code)
            if region != "ZZ":
                national = digits[size:]
                # The library would strip a national prefix (or a leading zero would need
                # Italian handling): leave such numbers to it.
                prefix = _national_prefix(code, region)
                if national[0] != "0" and (prefix is None or not prefix.match(national)) \
                        and phonenumbers.is_valid_number(phonenumbers.PhoneNumber(
                            country_code=code, national_number=int(national))):
                    return raw
                break
    return normalise_phone(raw)


@functools.cache
def _national_prefix(code: int, region: str) -> re.Pattern[str] | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


def email(raw: str) -> str:
    """Normalised as `normalise_email` (domain lower-cased); ContactInvalid otherwise."""
    m = _EMAIL.match(raw)
    if m is not None and len(m.group(1)) <= 64 and len(raw) <= 254:
        domain = m.group(2).lower()
        # `ab--` labels are punycode or refused by email-validator: its call.
        if domain.rsplit(".", 1)[-1] not in _SPECIAL and "--" not in domain:
            return f"{m.group(1)}@{domain}"
    return normalise_email(raw)

"""The import's phone and email shortcuts give exactly what phonenumbers and email-validator
give (the same E.164 or address, or the same refusal), for generated inputs near the edges."""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from tropa.contacts import ContactInvalid, normalise_email, normalise_phone
from tropa.customers.imports import fastcontacts

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
PREFIXES = ["", "", "0", "1", "8", "06", "01", "80", "00"]


def outcome(normalise: Callable[[str], str], raw: str) -> str:
    try:
        return normalise(raw)
    except ContactInvalid:
        return "refused"


phones = st.one_of(
    st.builds(lambda code, prefix, digits: f"+{code}{prefix}{digits}", st.sampled_from(CODES),
              st.sampled_from(PREFIXES), st.text("0123456789", min_size=3, max_size=14)),
    st.builds(lambda digits: f"+7{digits}", st.text("0123456789", min_size=8, max_size=12)),
    st.text("+0123456789 -()", max_size=18),
)
labels = st.text("aZx09-", min_size=1, max_size=8)
emails = st.one_of(
    st.builds(lambda local, domain, tld: f"{local}@{'.'.join(domain)}.{tld}",
              st.text("aZ09._+-!#'", min_size=1, max_size=10),
              st.lists(labels, min_size=1, max_size=3),
              st.sampled_from(["ru", "COM", "Ru", "io", "a", "test", "local", "xn--p1ai",
                               "r0", "onion", "example"])),
    st.emails(),
    st.text("aZ@.-_ ", max_size=20),
)


@settings(max_examples=3000, deadline=None)
@given(phones)
def test_phones_normalise_as_phonenumbers_does(raw: str) -> None:
    assert outcome(fastcontacts.phone, raw) == outcome(normalise_phone, raw)


@settings(max_examples=3000, deadline=None)
@given(emails)
def test_emails_normalise_as_email_validator_does(raw: str) -> None:
    assert outcome(fastcontacts.email, raw) == outcome(normalise_email, raw)

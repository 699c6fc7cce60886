"""Bounds on rendered messages, checked before anything reaches the store or a provider.

A rendered message over a bound is the message's own fault: it is cancelled with the
reason named here and never retried. Adapters may check finer limits of their own (SMS
segments, Telegram's 4,096 characters); these are the outer bounds, the same for every
provider of a channel, and they keep the message log's columns from refusing a row (a
refused row would fail the prepare activity on every retry). Documented in docs/channels.md.
"""

from __future__ import annotations

from tropa.errors import MessageInvalid

SUBJECT_MAX = 500
"""Characters of an email subject or a push title (the message log's column)."""
RECIPIENT_MAX = 320
"""Characters of a recipient: an email address's maximum; phones and chat ids are shorter."""
TEXT_MAX: dict[str, int] = {
    "sms": 10_000,
    "whatsapp": 4_096,
    "telegram": 4_096,
    "push": 4_000,
    "voice": 1_000,
    "flash_call": 1_000,
    "email": 1_000_000,
}
"""Characters of the text body per channel; email's HTML body has HTML_MAX."""
HTML_MAX = 2_000_000
"""Characters of an email's HTML body."""
TEMPLATE_PARAM_MAX = 1_024
"""Characters of one rendered WhatsApp template parameter (the Cloud API's limit)."""
STORED_PREVIEW = 1_000
"""Characters of a cancelled message's text kept in the log (the rest is dropped)."""
_CONTROL = {chr(c) for c in range(32)} - {"\n", "\r", "\t"}


def check_rendered(channel: str, *, text: str, subject: str | None, html: str | None) -> None:
    """Raise MessageInvalid when a rendered part is over its bound or cannot be sent."""
    limit = TEXT_MAX.get(channel, TEXT_MAX["email"])
    if len(text) > limit:
        raise MessageInvalid(
            f"the rendered {channel} text has {len(text)} characters, more than the "
            f"{limit} allowed; shorten the template or what it repeats",
            reason="text_too_long")
    if html is not None and len(html) > HTML_MAX:
        raise MessageInvalid(
            f"the rendered HTML has {len(html)} characters, more than the {HTML_MAX} allowed",
            reason="html_too_long")
    if subject is not None:
        if len(subject) > SUBJECT_MAX:
            raise MessageInvalid(
                f"the rendered subject has {len(subject)} characters, more than the "
                f"{SUBJECT_MAX} allowed", reason="subject_too_long")
        if "\n" in subject or "\r" in subject:
            # A line break in a header would end it (or start a new one): never sendable.
            raise MessageInvalid("the rendered subject contains a line break; subjects are "
                                 "one line (check the values the template puts in it)",
                                 reason="invalid_header")
    for name, part in (("text", text), ("subject", subject), ("HTML", html)):
        if part and not _CONTROL.isdisjoint(part):
            # NUL and other control characters: PostgreSQL refuses NUL in text, providers
            # refuse the rest; no retry changes that.
            raise MessageInvalid(f"the rendered {name} contains control characters",
                                 reason="invalid_characters")


def check_template_params(params: list[str]) -> None:
    """Raise MessageInvalid for a rendered WhatsApp template parameter over its bound."""
    for number, param in enumerate(params, start=1):
        if len(param) > TEMPLATE_PARAM_MAX:
            raise MessageInvalid(
                f"template parameter {number} has {len(param)} characters, more than the "
                f"{TEMPLATE_PARAM_MAX} allowed", reason="param_too_long")


def check_recipient(recipient: str) -> None:
    """Raise MessageInvalid for a recipient no provider or log column takes."""
    if len(recipient) > RECIPIENT_MAX or not _CONTROL.isdisjoint(recipient) \
            or "\n" in recipient or "\r" in recipient:
        raise MessageInvalid(f"the recipient has {len(recipient)} characters or a line break "
                             f"(at most {RECIPIENT_MAX}, one line)", reason="invalid_recipient")


def preview(value: str | None, limit: int) -> str | None:
    """A value cut to `limit` characters for the log, saying how much was dropped."""
    if value is None:
        return None
    if len(value) > limit:
        note = f" [... {len(value) - limit} more characters not stored]"
        value = value[: max(limit - len(note), 0)] + note
    # The reason may be a character the store refuses (NUL on PostgreSQL).
    return "".join("\ufffd" if c in _CONTROL else c for c in value)

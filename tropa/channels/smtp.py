"""Email over SMTP with aiosmtplib: a text part, an optional HTML part, custom headers.

Activities run in worker threads, so each send runs its own short event loop. SMTP has no
idempotency key: the Message-ID is derived from it, and the message log (not the server)
keeps a send from happening twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from tropa.channels.base import Accepted, OutgoingMessage
from tropa.channels.email import check_email
from tropa.errors import MessageInvalid, ProviderUnavailable

# 5xx answers that mean the message or the recipient is wrong; other 5xx (530, 535: auth,
# 554 policy at connect) are the sender's setup and are retried until it is fixed.
_FINAL_CODES = {550: "invalid_recipient", 551: "invalid_recipient", 553: "invalid_recipient",
                552: "message_too_large", 501: "invalid_recipient"}


class SmtpAdapter:
    """Email through an SMTP server (submission with optional STARTTLS and AUTH)."""

    channel = "email"
    provider = "smtp"

    def __init__(self, *, host: str, port: int, sender: str, username: str = "",
                 password: str = "", starttls: bool = False, timeout: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def validate(self, message: OutgoingMessage) -> None:
        """A mail needs a subject and a body."""
        check_email(message)

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The MIME message: text/plain, plus text/html as an alternative when given."""
        mail = EmailMessage()
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        domain = self._sender.rsplit("@", 1)[-1]
        mail["Message-ID"] = f"<{digest}@{domain}>"
        mail["Date"] = formatdate(localtime=False)
        mail["From"] = self._sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        for name, value in message.headers.items():
            mail[name] = value
        mail.set_content(message.text or " ")
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, message: OutgoingMessage) -> Accepted:
        """Submit one mail; the Message-ID is the provider message id."""
        mail = self.build(message)
        try:
            asyncio.run(aiosmtplib.send(
                mail, hostname=self._host, port=self._port, start_tls=self._starttls,
                username=self._username or None, password=self._password or None,
                timeout=self._timeout))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MessageInvalid("the mail server refused the recipient",
                                 reason="invalid_recipient") from exc
        except aiosmtplib.SMTPResponseException as exc:
            reason = _FINAL_CODES.get(exc.code)
            if reason is not None:
                raise MessageInvalid(f"the mail server refused the message ({exc.code})",
                                     reason=reason) from exc
            raise ProviderUnavailable(f"the mail server answered {exc.code}",
                                      reason=f"smtp_{exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ProviderUnavailable(f"mail server unreachable: {type(exc).__name__}",
                                      reason="unreachable") from exc
        return Accepted(provider_message_id=str(mail["Message-ID"]), provider=self.provider)

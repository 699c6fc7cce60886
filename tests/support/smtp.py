"""A real SMTP server for tests: aiosmtpd on a free port, keeping every mail it is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message as MimeMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


class Inbox:
    """An aiosmtpd handler keeping every mail it is given."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], MimeMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ARG002
        self.mails.append((list(envelope.rcpt_tos),
                           message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server for the block: its inbox and port."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()

"""Email through the provider's JSON HTTP API (an SMTP adapter sits beside it)."""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, answer_id, post_json, raise_for_provider
from tropa.errors import MessageInvalid


class EmailApiAdapter:
    """Email through an HTTP provider: `POST {base}/email/v1/messages`."""

    channel = "email"
    provider = "email-api"

    def __init__(self, client: httpx.Client, base_url: str, token: str, sender: str) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/email/v1/messages"
        self._token = token
        self._sender = sender

    def validate(self, message: OutgoingMessage) -> None:
        """A mail needs a subject and a body."""
        check_email(message)

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand one email to the provider."""
        response = post_json(
            self._client,
            self._url,
            token=self._token,
            idempotency_key=message.idempotency_key,
            body={
                "from": self._sender,
                "to": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "headers": message.headers,
            },
        )
        raise_for_provider(response)
        return Accepted(provider_message_id=answer_id(response, "message_id"),
                        provider=self.provider)


def check_email(message: OutgoingMessage) -> None:
    """A mail needs a subject and a body."""
    if not message.text.strip() and not (message.html or "").strip():
        raise MessageInvalid("the email has no text and no HTML", reason="empty_text")
    if not (message.subject or "").strip():
        raise MessageInvalid("the email has no subject", reason="empty_subject")

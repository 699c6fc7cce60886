"""What every channel adapter takes and returns, and how provider HTTP errors are sorted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from tropa.errors import MessageInvalid, ProviderAnswerInvalid, ProviderUnavailable


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message ready for a provider."""

    idempotency_key: str
    channel: str
    category: str
    recipient: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """Channel specifics: WhatsApp template and parameters, push title, receipt callback."""

    def provider_ref(self) -> str:
        """A short reference derived from the idempotency key, for providers that limit
        client references (Vonage: 40 characters); stable, so dedup still works."""
        return "t" + hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:39]


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; its id lets receipts find the run."""

    provider_message_id: str
    provider: str = ""


class ChannelAdapter(Protocol):
    """Sends one message over one channel; raises MessageInvalid or ProviderUnavailable."""

    channel: str

    def validate(self, message: OutgoingMessage) -> None:
        """Raise MessageInvalid when the message itself is wrong, before any provider call."""

    def send(self, message: OutgoingMessage) -> Accepted:
        """Hand the message to the provider."""


_RETRIED = frozenset({401, 402, 403, 404, 405, 408, 409, 425, 429})


def raise_for_provider(response: httpx.Response) -> None:
    """Sort a provider's answer once: content errors are final, everything else retries."""
    if response.is_success:
        return
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = str(error.get("code") or f"http_{response.status_code}")
    text = str(error.get("message") or response.reason_phrase)
    status = response.status_code
    if status in (400, 422):
        raise MessageInvalid(f"provider rejected the message: {text}", reason=code)
    if status == 413:
        raise MessageInvalid(f"provider refused the message as too large: {text}",
                             reason="message_too_large")
    # 401/402/403 are the sender's account (credentials, balance, sender name) and 3xx, 404
    # and 405 a provider URL to correct: fixable by the shop, so the message waits for the
    # fix; 408, 409 (a call under this key in progress), 425, 429 and 5xx are the provider's
    # load. Any other answer is the same on every retry: final.
    if status < 400 or status >= 500 or status in _RETRIED:
        raise ProviderUnavailable(f"provider unavailable ({status}): {text}", reason=code)
    raise ProviderAnswerInvalid(f"provider refused the call ({status}): {text}", reason=code)


def post_json(
    client: httpx.Client, url: str, *, token: str | None, idempotency_key: str,
    body: dict[str, Any], headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST to a provider; transport failures become ProviderUnavailable.

    Exception texts never carry the URL: some providers (Telegram) put the token in it.
    """
    sent = {"Idempotency-Key": idempotency_key, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        return client.post(url, json=body, headers=sent)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("provider timed out", reason="timeout") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"provider unreachable: {type(exc).__name__}",
                                  reason="unreachable") from exc


def answer_id(response: httpx.Response, *path: str | int) -> str:
    """The message id at `path` in a successful answer's JSON.

    A provider that took the call but gives no id is final (ProviderAnswerInvalid): asking
    again gets the same answer, and without an id no receipt can find the message."""
    try:
        value: Any = response.json()
        for part in path:
            value = value[part]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderAnswerInvalid(
            f"the provider answered {response.status_code} without a message id") from exc
    if value is None or isinstance(value, dict | list) or str(value) == "":
        raise ProviderAnswerInvalid(
            f"the provider answered {response.status_code} without a message id")
    return str(value)

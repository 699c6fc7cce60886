"""Robot voice calls and flash calls through an HTTP voice provider.

Shape: `POST {base}/voice/v1/calls` with `{"to", "from", "tts", "connect_to"}` for a robot
call that reads the text and may connect the customer to an operator, and
`POST {base}/voice/v1/flashcalls` with `{"to"}` for a flash call whose caller number's last
four digits are the code (the provider picks it; Tropa never stores it).
"""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, answer_id, post_json, raise_for_provider
from tropa.errors import MessageInvalid

_MAX_TTS = 1000


class VoiceAdapter:
    """A robot call reading the message text."""

    channel = "voice"
    provider = "voice"

    def __init__(self, client: httpx.Client, base_url: str, token: str, caller_id: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._token = token
        self._caller_id = caller_id

    def validate(self, message: OutgoingMessage) -> None:
        """The robot needs something to say, and not a whole essay."""
        if not message.text.strip():
            raise MessageInvalid("the call text is empty", reason="empty_text")
        if len(message.text) > _MAX_TTS:
            raise MessageInvalid(f"the call text is longer than {_MAX_TTS} characters",
                                 reason="text_too_long")

    def send(self, message: OutgoingMessage) -> Accepted:
        """Place the call."""
        body: dict[str, object] = {"to": message.recipient, "from": self._caller_id,
                                   "tts": message.text,
                                   "connect_to": message.options.get("connect_to")}
        response = post_json(self._client, f"{self._base}/voice/v1/calls", token=self._token,
                             idempotency_key=message.provider_ref(), body=body)
        raise_for_provider(response)
        return Accepted(provider_message_id=answer_id(response, "call_id"),
                        provider=self.provider)


class FlashCallAdapter(VoiceAdapter):
    """A flash call: the code is in the caller's number; the step's text is not spoken."""

    channel = "flash_call"

    def validate(self, message: OutgoingMessage) -> None:
        """A flash call needs only a number."""

    def send(self, message: OutgoingMessage) -> Accepted:
        """Ask the provider for a flash call."""
        response = post_json(self._client, f"{self._base}/voice/v1/flashcalls",
                             token=self._token, idempotency_key=message.provider_ref(),
                             body={"to": message.recipient})
        raise_for_provider(response)
        return Accepted(provider_message_id=answer_id(response, "call_id"),
                        provider=self.provider)

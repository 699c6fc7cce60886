"""Push through Firebase Cloud Messaging HTTP v1: `POST {base}/v1/projects/<id>/messages:send`."""

from __future__ import annotations

import httpx

from tropa.channels.base import Accepted, OutgoingMessage, answer_id, post_json
from tropa.errors import MessageInvalid, ProviderUnavailable

# FCM error statuses that are the message's own fault.
FINAL = {"INVALID_ARGUMENT": "invalid_params", "UNREGISTERED": "invalid_recipient",
         "NOT_FOUND": "invalid_recipient"}


class FcmAdapter:
    """A notification (title and body) to one device registration token."""

    channel = "push"
    provider = "fcm"

    def __init__(self, client: httpx.Client, base_url: str, project_id: str, token: str) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._token = token

    def validate(self, message: OutgoingMessage) -> None:
        """A push needs a body."""
        if not message.text.strip():
            raise MessageInvalid("the push text is empty", reason="empty_text")

    def send(self, message: OutgoingMessage) -> Accepted:
        """Send; the answer's `name` is the message id."""
        notification = {"body": message.text}
        if message.subject:
            notification["title"] = message.subject
        body = {"message": {"token": message.recipient, "notification": notification,
                            "data": {"tropa_ref": message.provider_ref()}}}
        response = post_json(self._client, self._url, token=self._token,
                             idempotency_key=message.provider_ref(), body=body)
        if response.is_success:
            return Accepted(provider_message_id=answer_id(response, "name"),
                            provider=self.provider)
        try:
            status = str(response.json()["error"]["status"])
        except (ValueError, KeyError, TypeError):
            status = ""
        if status in FINAL:
            raise MessageInvalid(f"FCM refused the message: {status}", reason=FINAL[status])
        raise ProviderUnavailable(f"FCM unavailable ({response.status_code} {status})",
                                  reason=f"fcm_{status or response.status_code}")

"""A channel without a provider: every send is cancelled, finally, naming the setting."""

from __future__ import annotations

from tropa.channels.base import Accepted, OutgoingMessage
from tropa.errors import MessageInvalid


class NotConfiguredAdapter:
    """Stands for a channel whose provider URL is empty outside `tropa dev`.

    The send ends `cancelled` with the reason `channel_not_configured` (a fallback channel,
    if the step has one, is tried next); nothing goes anywhere by accident."""

    provider = "none"

    def __init__(self, channel: str, setting: str) -> None:
        self.channel = channel
        self._setting = setting

    def _refuse(self) -> MessageInvalid:
        return MessageInvalid(f"the {self.channel} channel is not configured: set {self._setting} "
                              "to the provider's URL", reason="channel_not_configured")

    def validate(self, message: OutgoingMessage) -> None:  # noqa: ARG002
        """Refuse before anything is rendered for a provider."""
        raise self._refuse()

    def send(self, message: OutgoingMessage) -> Accepted:  # noqa: ARG002
        """Refuse (a message prepared before the setting was removed)."""
        raise self._refuse()

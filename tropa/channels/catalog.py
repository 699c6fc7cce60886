"""The channels Tropa can send over, which contact each uses, and how adapters are built."""

from __future__ import annotations

import httpx

from tropa.channels.base import ChannelAdapter
from tropa.channels.email import EmailApiAdapter
from tropa.channels.sms import SmsAdapter
from tropa.settings import Settings

# channel -> the customer contact it is addressed to
CHANNELS: dict[str, str] = {
    "sms": "phone",
    "email": "email",
}


def build_adapters(settings: Settings, client: httpx.Client) -> dict[str, ChannelAdapter]:
    """One adapter per channel, configured from the provider settings."""
    p = settings.providers
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
    return {
        "sms": SmsAdapter(client, p.sms_url or sandbox, p.sms_token, p.sms_sender,
                          p.sms_max_segments),
        "email": EmailApiAdapter(client, p.email_url or sandbox, p.email_token, p.email_from),
    }

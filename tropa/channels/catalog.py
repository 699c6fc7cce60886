"""The channels Tropa can send over, which contact each uses, and how adapters are built."""

from __future__ import annotations

import httpx

from tropa.channels.base import ChannelAdapter
from tropa.channels.email import EmailApiAdapter
from tropa.channels.push import FcmAdapter
from tropa.channels.sms import SmsAdapter
from tropa.channels.smtp import SmtpAdapter
from tropa.channels.telegram import TelegramAdapter
from tropa.channels.voice import FlashCallAdapter, VoiceAdapter
from tropa.channels.vonage import VonageSmsAdapter
from tropa.channels.whatsapp import WhatsAppAdapter
from tropa.settings import Settings

# channel -> the customer contact it is addressed to; `attr:<name>` is a customer attribute
CHANNELS: dict[str, str] = {
    "sms": "phone",
    "email": "email",
    "whatsapp": "phone",
    "telegram": "attr:telegram_chat_id",
    "push": "attr:push_token",
    "voice": "phone",
    "flash_call": "phone",
}

# Channels whose providers post delivery receipts; the run waits for them when
# TROPA_DELIVERY_RECEIPTS_BASE_URL is set.
RECEIPT_CHANNELS = frozenset({"sms", "whatsapp"})


def build_adapters(settings: Settings, client: httpx.Client) -> dict[str, ChannelAdapter]:
    """One adapter per channel, configured from the provider settings."""
    p = settings.providers
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
    sms: ChannelAdapter
    if p.sms_shape == "vonage":
        sms = VonageSmsAdapter(client, p.sms_url or sandbox, p.sms_api_key,
                               p.sms_token.get_secret_value(), p.sms_sender, p.sms_max_segments)
    else:
        sms = SmsAdapter(client, p.sms_url or sandbox, p.sms_token.get_secret_value(),
                         p.sms_sender, p.sms_max_segments)
    email: ChannelAdapter
    if p.email_transport == "smtp":
        email = SmtpAdapter(host=p.smtp_host, port=p.smtp_port, sender=p.email_from,
                            username=p.smtp_username,
                            password=p.smtp_password.get_secret_value(),
                            starttls=p.smtp_starttls, timeout=p.timeout_seconds)
    else:
        email = EmailApiAdapter(client, p.email_url or sandbox, p.email_token.get_secret_value(),
                                p.email_from)
    voice_url = p.voice_url or sandbox
    voice_token = p.voice_token.get_secret_value()
    return {
        "sms": sms,
        "email": email,
        "whatsapp": WhatsAppAdapter(client, p.whatsapp_url or sandbox, p.whatsapp_api_version,
                                    p.whatsapp_phone_number_id,
                                    p.whatsapp_token.get_secret_value()),
        "telegram": TelegramAdapter(client, p.telegram_url or sandbox,
                                    p.telegram_token.get_secret_value()),
        "push": FcmAdapter(client, p.push_url or sandbox, p.push_project_id,
                           p.push_token.get_secret_value()),
        "voice": VoiceAdapter(client, voice_url, voice_token, p.voice_caller_id),
        "flash_call": FlashCallAdapter(client, voice_url, voice_token, p.voice_caller_id),
    }

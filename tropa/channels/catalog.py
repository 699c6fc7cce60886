"""The channels Tropa can send over, which contact each uses, and how adapters are built."""

from __future__ import annotations

import httpx

from tropa.channels.base import ChannelAdapter
from tropa.channels.email import EmailApiAdapter
from tropa.channels.push import FcmAdapter
from tropa.channels.sms import SmsAdapter
from tropa.channels.smtp import SmtpAdapter
from tropa.channels.telegram import TelegramAdapter
from tropa.channels.unconfigured import NotConfiguredAdapter
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
    """One adapter per channel, configured from the provider settings.

    A channel with an empty URL goes to the sandbox in `tropa dev` (`use_sandbox`) and is
    otherwise not configured."""
    p = settings.providers
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"

    def url(value: str) -> str | None:
        return value or (sandbox if p.use_sandbox else None)

    adapters: dict[str, ChannelAdapter] = {}
    sms_url = url(p.sms_url)
    if sms_url is None:
        adapters["sms"] = NotConfiguredAdapter("sms", "TROPA_PROVIDER_SMS_URL")
    elif p.sms_shape == "vonage":
        adapters["sms"] = VonageSmsAdapter(client, sms_url, p.sms_api_key,
                                           p.sms_token.get_secret_value(), p.sms_sender,
                                           p.sms_max_segments)
    else:
        adapters["sms"] = SmsAdapter(client, sms_url, p.sms_token.get_secret_value(),
                                     p.sms_sender, p.sms_max_segments)
    email_url = url(p.email_url)
    if p.email_transport == "smtp":
        adapters["email"] = SmtpAdapter(host=p.smtp_host, port=p.smtp_port, sender=p.email_from,
                                        username=p.smtp_username,
                                        password=p.smtp_password.get_secret_value(),
                                        starttls=p.smtp_starttls, timeout=p.timeout_seconds)
    elif email_url is None:
        adapters["email"] = NotConfiguredAdapter("email", "TROPA_PROVIDER_EMAIL_URL (or "
                                                 "TROPA_PROVIDER_EMAIL_TRANSPORT=smtp)")
    else:
        adapters["email"] = EmailApiAdapter(client, email_url, p.email_token.get_secret_value(),
                                            p.email_from)
    whatsapp_url = url(p.whatsapp_url)
    adapters["whatsapp"] = (
        WhatsAppAdapter(client, whatsapp_url, p.whatsapp_api_version,
                        p.whatsapp_phone_number_id, p.whatsapp_token.get_secret_value())
        if whatsapp_url else NotConfiguredAdapter("whatsapp", "TROPA_PROVIDER_WHATSAPP_URL"))
    telegram_url = url(p.telegram_url)
    adapters["telegram"] = (
        TelegramAdapter(client, telegram_url, p.telegram_token.get_secret_value())
        if telegram_url else NotConfiguredAdapter("telegram", "TROPA_PROVIDER_TELEGRAM_URL"))
    push_url = url(p.push_url)
    adapters["push"] = (
        FcmAdapter(client, push_url, p.push_project_id, p.push_token.get_secret_value())
        if push_url else NotConfiguredAdapter("push", "TROPA_PROVIDER_PUSH_URL"))
    voice_url = url(p.voice_url)
    voice_token = p.voice_token.get_secret_value()
    if voice_url is None:
        adapters["voice"] = NotConfiguredAdapter("voice", "TROPA_PROVIDER_VOICE_URL")
        adapters["flash_call"] = NotConfiguredAdapter("flash_call", "TROPA_PROVIDER_VOICE_URL")
    else:
        adapters["voice"] = VoiceAdapter(client, voice_url, voice_token, p.voice_caller_id)
        adapters["flash_call"] = FlashCallAdapter(client, voice_url, voice_token,
                                                  p.voice_caller_id)
    return adapters

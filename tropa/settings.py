"""Settings, one section per concern, each read from environment variables with its own prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TemporalSettings(BaseSettings):
    """Where the Temporal service is; empty address means the embedded dev server."""

    model_config = SettingsConfigDict(env_prefix="TROPA_TEMPORAL_")

    address: str = Field(
        default="",
        description="host:port of a Temporal frontend; empty starts the embedded dev server",
    )
    namespace: str = Field(default="default", description="Temporal namespace for all runs")
    task_queue: str = Field(default="tropa", description="Task queue of journeys and activities")
    tls: bool = Field(default=False, description="Use TLS (always on when an API key is set)")
    tls_cert_path: str = Field(default="", description="Client certificate (PEM) for mTLS")
    tls_key_path: str = Field(default="", description="Client private key (PEM) for mTLS")
    api_key: SecretStr = Field(default=SecretStr(""), description="Temporal Cloud API key")
    ui_url: str = Field(
        default="", description="Temporal Web UI base, for links to runs; empty means the "
        "embedded dev server's UI (http://localhost:<dev_ui_port>)"
    )
    dev_port: int = Field(default=7233, description="Port of the embedded dev server frontend")
    dev_ui_port: int = Field(default=8233, description="Port of the embedded dev server Web UI")
    sticky_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a run's next task waits for the worker "
        "that ran it last before any worker takes it (after a worker dies, its runs resume "
        "elsewhere within this time)")

    def web_ui(self) -> str:
        """Where the Web UI is: the configured URL or the embedded server's."""
        return self.ui_url or f"http://localhost:{self.dev_ui_port}"


class DatabaseSettings(BaseSettings):
    """Where customers, events, journeys and the message log live."""

    model_config = SettingsConfigDict(env_prefix="TROPA_DATABASE_")

    url: str = Field(
        default="",
        description="SQLAlchemy URL (postgresql+psycopg://...); empty uses SQLite in the data dir",
    )


class ApiSettings(BaseSettings):
    """The HTTP API process."""

    model_config = SettingsConfigDict(env_prefix="TROPA_API_")

    host: str = Field(default="127.0.0.1", description="Interface the API listens on")
    port: int = Field(default=8000, description="Port the API listens on")
    max_body_bytes: int = Field(
        default=5_000_000, description="Largest accepted request body; larger bodies get 413"
    )


class ProviderSettings(BaseSettings):
    """Channel providers: URLs, credentials and sender names. Secrets never reach logs.

    A channel whose URL is empty is not configured (its sends end with the reason
    `channel_not_configured`), except in `tropa dev`, which points it at the sandbox.
    """

    model_config = SettingsConfigDict(env_prefix="TROPA_PROVIDER_")

    sms_shape: Literal["vonage", "generic"] = Field(
        default="vonage",
        description="SMS API shape: vonage (Vonage/Nexmo SMS API, POST /sms/json) or generic "
        "(JSON POST /sms/v1/messages with a Bearer token)")
    sms_url: str = Field(default="", description="Base URL of the SMS provider API")
    sms_api_key: str = Field(default="dev-sms-key", description="SMS provider account key")
    sms_token: SecretStr = Field(default=SecretStr("dev-sms-token"),
                                 description="SMS provider API secret / token")
    sms_sender: str = Field(default="Tropa", description="Registered SMS sender name")
    sms_max_segments: int = Field(default=6, description="Longest SMS accepted, in segments")
    email_transport: Literal["http", "smtp"] = Field(
        default="http", description="Email over the provider's HTTP API or over SMTP")
    email_url: str = Field(default="", description="Base URL of the email provider API")
    email_token: SecretStr = Field(default=SecretStr("dev-email-token"),
                                   description="Email provider API token")
    email_from: str = Field(default="shop@example.com", description="From address of emails")
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server host")
    smtp_port: int = Field(default=25, description="SMTP server port")
    smtp_username: str = Field(default="", description="SMTP user; empty sends without AUTH")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with "
                                "STARTTLS")
    unsubscribe_url: str = Field(
        default="http://127.0.0.1:8000/v1/unsubscribe",
        description="One-click unsubscribe endpoint put in List-Unsubscribe of marketing mail")
    unsubscribe_mailto: str = Field(default="unsubscribe@example.com",
                                    description="Mailbox put in List-Unsubscribe")
    whatsapp_url: str = Field(default="", description="Base URL of the WhatsApp Cloud API "
                              "(https://graph.facebook.com)")
    whatsapp_api_version: str = Field(default="v19.0", description="Graph API version")
    whatsapp_phone_number_id: str = Field(default="100000000000001",
                                          description="WhatsApp Business phone number id")
    whatsapp_token: SecretStr = Field(default=SecretStr("dev-whatsapp-token"),
                                      description="WhatsApp Cloud API access token")
    telegram_url: str = Field(default="", description="Telegram Bot API base "
                              "(https://api.telegram.org)")
    telegram_token: SecretStr = Field(default=SecretStr("dev-telegram-token"),
                                      description="Telegram bot token")
    push_url: str = Field(default="", description="FCM base (https://fcm.googleapis.com)")
    push_project_id: str = Field(default="tropa-dev", description="Firebase project id")
    push_token: SecretStr = Field(default=SecretStr("dev-push-token"),
                                  description="OAuth 2 access token for FCM HTTP v1")
    voice_url: str = Field(default="", description="Base URL of the voice provider API")
    voice_token: SecretStr = Field(default=SecretStr("dev-voice-token"),
                                   description="Voice provider API token")
    voice_caller_id: str = Field(default="+74950000000", description="Caller id of robot calls")
    unsubscribe_secret: SecretStr = Field(
        default=SecretStr("dev-unsubscribe-secret"),
        description="HMAC key of unsubscribe tokens; kept apart from the webhook key, which "
        "every webhook receiver holds")
    webhook_secret: SecretStr = Field(default=SecretStr("dev-webhook-secret"),
                                      description="HMAC-SHA256 key signing webhook steps")
    timeout_seconds: float = Field(default=10.0, description="HTTP timeout of one provider call")
    use_sandbox: bool = Field(
        default=False, description="Send channels whose URL is empty to the sandbox server "
        "(`tropa dev` turns this on); off, such a channel is not configured and its sends "
        "are cancelled with the reason channel_not_configured")


class DeliverySettings(BaseSettings):
    """How sends are queued, retried and confirmed."""

    model_config = SettingsConfigDict(env_prefix="TROPA_DELIVERY_")

    channel_queues: bool = Field(
        default=True,
        description="Deliver each channel on its own task queue `<queue>-<channel>`, served by "
        "a channel worker whose server-side rate limit caps mass messages on that channel. "
        "Every `tropa worker` and `tropa dev` runs the channel workers too")
    rates: dict[str, float] = Field(
        default_factory=lambda: {"sms": 20.0, "email": 50.0, "whatsapp": 20.0,
                                 "telegram": 25.0, "push": 100.0, "voice": 2.0},
        description="Provider calls per second per channel, for the whole system (the channel "
        "task queue's max_task_queue_activities_per_second); a missing channel is unlimited")
    retry_initial_seconds: float = Field(default=5.0, description="First retry delay")
    retry_max_interval_seconds: float = Field(
        default=600.0, description="Longest delay between two provider attempts; attempts "
        "never stop until the provider accepts or refuses the message itself")
    deliver_timeout_seconds: float = Field(
        default=30.0, description="Time one provider call may take before it is tried again")
    receipts_base_url: str = Field(
        default="", description="Public base URL of Tropa's API; when set, providers are asked "
        "to post delivery receipts to <url>/v1/providers/<provider>/receipts and runs wait "
        "for them")
    receipts_secret: SecretStr = Field(
        default=SecretStr("dev-receipts-secret"),
        description="HMAC-SHA256 key receipts are signed with (X-Tropa-Signature)")
    receipt_timeout_seconds: float = Field(
        default=172800.0, description="How long a run waits for a receipt before it moves on")
    redeliver_after_seconds: float = Field(
        default=900.0, description="Pause before a new attempt after an undelivered receipt")
    max_rounds: int = Field(default=5, description="Attempts after undelivered receipts")


class WebhookSettings(BaseSettings):
    """Where `webhook` steps may call: public addresses only, unless allowed here."""

    model_config = SettingsConfigDict(env_prefix="TROPA_WEBHOOK_")

    allow_private: bool = Field(
        default=False,
        description="Let webhooks call loopback, private, link-local and reserved addresses "
        "(never the cloud metadata addresses); for a receiver inside your own network, "
        "prefer naming it in `allowed_hosts`")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts webhooks may call although they resolve to internal addresses, '
        'as JSON: ["crm.internal", "127.0.0.1:8025", "10.20.0.0/16"] (a name, a host:port or '
        'an IP network)')
    sink_url: str = Field(
        default="", description="Send every webhook call to this URL instead, with the URL "
        "the step names in the X-Tropa-Webhook-Url header; `tropa simulate` points it at its "
        "sandbox so no receiver sees a simulated call. Empty: call the step's URL")


class CapRule(BaseModel):
    """At most `max` messages of `category` per `window` on `channel` (`*`: each channel)."""

    channel: str = "*"
    category: str = "marketing"
    max: int = 3
    window_seconds: int = 86400


class PolicySettings(BaseSettings):
    """The policy gate every send passes: consent, contacts, quiet hours, frequency caps."""

    model_config = SettingsConfigDict(env_prefix="TROPA_POLICY_")

    send_to_unverified: bool = Field(
        default=True, description="Use phones and emails the customer has not verified")
    default_region: str = Field(default="RU", description="Region of phones written without +")
    quiet_from: str = Field(default="", description="Start of quiet hours (HH:MM, customer's "
                            "time zone) for marketing messages; empty: none")
    quiet_to: str = Field(default="", description="End of quiet hours (HH:MM)")
    caps: list[CapRule] = Field(
        default_factory=lambda: [CapRule()],
        description="Frequency caps across all journeys, as JSON: "
        '[{"channel": "*", "category": "marketing", "max": 3, "window_seconds": 86400}]')


class SandboxSettings(BaseSettings):
    """The sandbox provider server that records what would have been sent."""

    model_config = SettingsConfigDict(env_prefix="TROPA_SANDBOX_")

    host: str = Field(default="127.0.0.1", description="Interface of the sandbox server")
    port: int = Field(default=8025, description="Port of the sandbox server")


class LoyaltySettings(BaseSettings):
    """The loyalty ledger: programme file, burn sweep, card links, the platform adapter."""

    model_config = SettingsConfigDict(env_prefix="TROPA_LOYALTY_")

    programme_file: Path | None = Field(
        default=None, description="YAML file of the programme (levels, welcome limit); unset "
        "uses Basic/Silver (10,000)/Gold (50,000) and one welcome accrual per phone a year")
    adapter: str = Field(default="embedded", description="Loyalty platform journeys use: "
                         "`embedded` (Tropa's ledger) or an entry point of group `tropa.loyalty`")
    expiring_notice_days: int = Field(default=7, ge=0, description="Emit `loyalty.expiring` "
                                      "this many days before points burn (0: never)")
    expiry_sweep_seconds: int = Field(default=3600, ge=60, description="How often the burn "
                                      "sweep (a Temporal Schedule) runs")
    card_link_pattern: str = Field(
        default="http://127.0.0.1:8000/v1/loyalty/cards/{token}",
        description="URL of a customer's wallet card; `{token}` is a signed per-customer token")
    card_link_secret: SecretStr = Field(default=SecretStr("dev-card-link-secret"),
                                        description="HMAC key of card link tokens")


class Assignee(BaseModel):
    """How to reach a staff member or a team that tasks are for."""

    email: str | None = None
    phone: str | None = None
    telegram_chat_id: str | None = None


class TaskSettings(BaseSettings):
    """Staff tasks of the `create_task` step: who the assignees are and how to reach them."""

    model_config = SettingsConfigDict(env_prefix="TROPA_TASKS_")

    assignees: dict[str, Assignee] = Field(
        default_factory=dict,
        description='Staff directory as JSON: {"manager": {"email": "m@shop.example", '
        '"phone": "+79160000000", "telegram_chat_id": "12345"}}; a task for a name not here '
        "is stored but not announced")


class TriggerSettings(BaseSettings):
    """Schedule triggers: how fast a fire starts runs for its audience."""

    model_config = SettingsConfigDict(env_prefix="TROPA_TRIGGERS_")

    schedule_start_rate: float = Field(
        default=100.0, gt=0, le=10_000, description="Most runs a schedule fire starts per "
        "second (each journey's fire paces itself to this rate), so a Monday campaign to a "
        "million customers does not flood Temporal, the database and the channels at once")
    schedule_page_size: int = Field(
        default=500, ge=1, le=10_000, description="Customers a schedule fire reads from the "
        "audience query per page (never more than the start rate allows per second)")


class BroadcastSettings(BaseSettings):
    """How broadcasts page through their recipients."""

    model_config = SettingsConfigDict(env_prefix="TROPA_BROADCASTS_")

    page_size: int = Field(default=500, ge=1, le=10_000, description="Recipients gated and "
                           "logged per activity; the next page is gated while one is delivered")
    deliver_batch: int = Field(default=250, ge=1, le=1000, description="Messages per deliver "
                               "activity on a channel without a rate limit (a rate-limited "
                               "channel delivers one message per activity, so the channel "
                               "queue's limit counts each)")
    # One process's HTTP client slows down past about 8 calls in flight (the interpreter
    # lock and the connection pool's lock): 1,100 calls/s at 8, 660 at 40 on the sandbox.
    deliver_concurrency: int = Field(default=4, ge=1, le=256, description="Provider calls "
                                     "one deliver activity makes at once (a rate-limited "
                                     "channel's limit still counts every message)")
    page_timeout_seconds: float = Field(default=600, gt=0, description="How long a page's "
                                        "gate-and-log activity may take before it is retried "
                                        "(on another worker, if this one died)")
    deliver_heartbeat_seconds: float = Field(default=60, gt=0, description="Silence after "
                                             "which a deliver activity counts as lost (its "
                                             "worker died) and is retried")
    history_limit: int = Field(default=4000, ge=500, le=40_000, description="History events "
                               "after which a Broadcast workflow continues as new")


class Settings(BaseSettings):
    """All of Tropa's settings."""

    model_config = SettingsConfigDict(env_prefix="TROPA_")

    data_dir: Path = Field(
        default=Path(".tropa-data"), description="Folder of the embedded SQLite files"
    )
    log_level: str = Field(default="INFO", description="Log level of every Tropa process")
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    loyalty: LoyaltySettings = Field(default_factory=LoyaltySettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    triggers: TriggerSettings = Field(default_factory=TriggerSettings)
    broadcasts: BroadcastSettings = Field(default_factory=BroadcastSettings)

    def database_url(self) -> str:
        """The configured database, or the embedded SQLite file."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'tropa.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()

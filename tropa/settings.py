"""Settings, one section per concern, each read from environment variables with its own prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    api_key: str = Field(default="", description="Temporal Cloud API key")
    ui_url: str = Field(
        default="http://localhost:8233", description="Temporal Web UI base, for links to runs"
    )
    dev_port: int = Field(default=7233, description="Port of the embedded dev server frontend")
    dev_ui_port: int = Field(default=8233, description="Port of the embedded dev server Web UI")


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
    """Channel providers: URLs, credentials and sender names. Secrets never reach logs."""

    model_config = SettingsConfigDict(env_prefix="TROPA_PROVIDER_")

    sms_url: str = Field(default="", description="Base URL of the SMS provider API")
    sms_token: str = Field(default="dev-sms-token", description="SMS provider API token")
    sms_sender: str = Field(default="Tropa", description="Registered SMS sender name")
    sms_max_segments: int = Field(default=6, description="Longest SMS accepted, in segments")
    email_url: str = Field(default="", description="Base URL of the email provider API")
    email_token: str = Field(default="dev-email-token", description="Email provider API token")
    email_from: str = Field(default="shop@example.com", description="From address of emails")
    timeout_seconds: float = Field(default=10.0, description="HTTP timeout of one provider call")


class SandboxSettings(BaseSettings):
    """The sandbox provider server that records what would have been sent."""

    model_config = SettingsConfigDict(env_prefix="TROPA_SANDBOX_")

    host: str = Field(default="127.0.0.1", description="Interface of the sandbox server")
    port: int = Field(default=8025, description="Port of the sandbox server")


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

    def database_url(self) -> str:
        """The configured database, or the embedded SQLite file."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'tropa.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()

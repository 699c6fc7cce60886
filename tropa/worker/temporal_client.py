"""Connecting to Temporal: the embedded dev server or a cluster (TLS, API key)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from tropa.settings import TemporalSettings


async def connect(settings: TemporalSettings, address: str | None = None) -> Client:
    """A client with Tropa's data converter, configured from settings."""
    tls: TLSConfig | bool = False
    if settings.tls_cert_path and settings.tls_key_path:
        # Read once at start-up, before any work is scheduled on the loop.
        tls = TLSConfig(client_cert=Path(settings.tls_cert_path).read_bytes(),  # noqa: ASYNC240
                        client_private_key=Path(settings.tls_key_path).read_bytes())  # noqa: ASYNC240
    elif settings.tls or settings.api_key.get_secret_value():
        tls = True
    return await Client.connect(
        address or settings.address or f"127.0.0.1:{settings.dev_port}",
        namespace=settings.namespace,
        api_key=settings.api_key.get_secret_value() or None,
        tls=tls,
        data_converter=pydantic_data_converter,
    )

"""Secrets for processes started the production way (`tropa api`, `tropa worker`), which
refuse the development defaults."""

from __future__ import annotations

import secrets

from tropa.dev_secrets import SECRETS


def production_secrets() -> dict[str, str]:
    """A random value for every secret setting, as environment variables."""
    return {secret.env: secrets.token_urlsafe(32) for secret in SECRETS}

"""Secrets that must not keep their public development defaults outside `tropa dev`.

With a default such as `dev-receipts-secret` anyone computes callback and unsubscribe
tokens or signs receipts and webhooks. `tropa dev` replaces the defaults with random
secrets kept in its data folder (so links and callbacks survive a restart); `tropa api`
and `tropa worker` refuse to start while one is left, naming the setting.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, SecretStr

from tropa.errors import SettingsUnsafe
from tropa.settings import Assignee, Settings

MIN_LENGTH = 16
SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class Secret:
    """One secret setting: its section, field, environment variable and public default."""

    section: str
    field: str
    env: str
    default: str


SECRETS = (
    Secret("delivery", "receipts_secret", "TROPA_DELIVERY_RECEIPTS_SECRET",
           "dev-receipts-secret"),
    Secret("providers", "webhook_secret", "TROPA_PROVIDER_WEBHOOK_SECRET", "dev-webhook-secret"),
    Secret("providers", "unsubscribe_secret", "TROPA_PROVIDER_UNSUBSCRIBE_SECRET",
           "dev-unsubscribe-secret"),
)


def _section(settings: Settings, secret: Secret) -> BaseModel:
    section: BaseModel = getattr(settings, secret.section)
    return section


def _value(settings: Settings, secret: Secret) -> str:
    value: SecretStr = getattr(_section(settings, secret), secret.field)
    return value.get_secret_value()


def unsafe_secrets(settings: Settings) -> list[str]:
    """Each secret still at its development default, empty or too short, as a sentence."""
    found = []
    for secret in SECRETS:
        value = _value(settings, secret)
        if value == secret.default:
            found.append(f"{secret.env} has its public development default")
        elif len(value) < MIN_LENGTH:
            found.append(f"{secret.env} is {'empty' if not value else 'too short'} "
                         f"(at least {MIN_LENGTH} characters)")
    return found


def refuse_unsafe_secrets(settings: Settings) -> None:
    """Raise SettingsUnsafe naming every secret a production process must not run with."""
    found = unsafe_secrets(settings)
    if found:
        raise SettingsUnsafe(
            "refusing to start: " + "; ".join(found) + ". Set each to a random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, the same in "
            "every API and worker process (`tropa dev` makes its own)")


def use_development_settings(settings: Settings) -> None:
    """What `tropa dev` runs with: its own secrets, and the sandbox for every channel
    without a provider URL."""
    use_development_secrets(settings)
    settings.providers.use_sandbox = True
    # The shipped abandoned-cart journey hands carts to `manager`: announce those tasks to a
    # sandbox mailbox unless a staff directory is configured.
    settings.tasks.assignees.setdefault("manager", Assignee(email="manager@shop.example"))


def use_development_secrets(settings: Settings) -> None:
    """Give every secret left at its default a random value kept in the data folder.

    The file is made once (mode 600) and read on later starts, so callback URLs and
    unsubscribe links handed out before a restart keep working. Secrets set in the
    environment are left as they are."""
    path = settings.data_dir / SECRETS_FILE
    stored = _read(path)
    changed = False
    for secret in SECRETS:
        if _value(settings, secret) != secret.default:
            continue
        value = stored.get(secret.env)
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            value = stored[secret.env] = secrets.token_urlsafe(32)
            changed = True
        setattr(_section(settings, secret), secret.field, SecretStr(value))
    if changed:
        _write(path, stored)


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsUnsafe(f"{path}: cannot read the development secrets ({exc}); delete "
                             "the file to make new ones") from exc
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # Created readable by the owner only, then moved in place whole.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    temporary.replace(path)

"""No public development secrets in production: `tropa api` and `tropa worker` refuse them,
naming the setting; `tropa dev` makes random ones and keeps them across restarts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.secrets import production_secrets
from tropa.dev_secrets import SECRETS, refuse_unsafe_secrets, use_development_settings
from tropa.errors import SettingsUnsafe
from tropa.settings import Settings

BIN = Path(sys.executable).parent
NAMES = [s.env for s in SECRETS]


def _env(tmp_path: Path, **secrets: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES}
    return {**clean, "TROPA_DATA_DIR": str(tmp_path), **secrets}


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("command", [[str(BIN / "tropa"), "api"], [str(BIN / "tropa"), "worker"],
                                     [sys.executable, "-m", "tropa.delivery"]])
def test_production_processes_refuse_development_secrets(tmp_path: Path,
                                                         command: list[str]) -> None:
    started = _run(command, _env(tmp_path))

    assert started.returncode == 2, started.stderr
    for name in NAMES:
        assert name in started.stderr
    assert "development default" in started.stderr


def test_the_refusal_names_only_the_settings_at_fault(tmp_path: Path) -> None:
    receipts_only = {"TROPA_DELIVERY_RECEIPTS_SECRET": production_secrets()[NAMES[0]]}
    started = _run([str(BIN / "tropa"), "worker"],
                   _env(tmp_path, **receipts_only, TROPA_PROVIDER_WEBHOOK_SECRET="short"))

    assert started.returncode == 2
    assert "TROPA_DELIVERY_RECEIPTS_SECRET" not in started.stderr
    assert "TROPA_PROVIDER_WEBHOOK_SECRET is too short" in started.stderr
    assert "TROPA_PROVIDER_UNSUBSCRIBE_SECRET has its public development default" in \
        started.stderr


def test_real_secrets_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in production_secrets().items():
        monkeypatch.setenv(name, value)
    refuse_unsafe_secrets(Settings(data_dir=tmp_path))


def test_tropa_dev_makes_its_own_secrets_and_keeps_them(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("TROPA_PROVIDER_WEBHOOK_SECRET", "a-webhook-secret-the-admin-chose")
    first, second = Settings(data_dir=tmp_path), Settings(data_dir=tmp_path)
    with pytest.raises(SettingsUnsafe):
        refuse_unsafe_secrets(first)

    use_development_settings(first)
    use_development_settings(second)  # the next start of `tropa dev`

    refuse_unsafe_secrets(first)
    receipts = first.delivery.receipts_secret.get_secret_value()
    unsubscribe = first.providers.unsubscribe_secret.get_secret_value()
    assert receipts != "dev-receipts-secret" and len(receipts) >= 32
    assert receipts != unsubscribe
    assert second.delivery.receipts_secret.get_secret_value() == receipts
    assert second.providers.unsubscribe_secret.get_secret_value() == unsubscribe
    assert first.providers.webhook_secret.get_secret_value() == "a-webhook-secret-the-admin-chose"
    assert first.providers.use_sandbox
    mode = stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode)
    assert mode == 0o600

"""The test-only step plugin stays out of `make run`; its load is logged once, by a worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from tropa.settings import Settings
from tropa.steps.builtin import registry
from tropa.worker.worker import build_workers

ROOT = Path(__file__).resolve().parent.parent


def _make_dry_run(target: str) -> str:
    # -B: as on a fresh checkout, every prerequisite would be made; -n: print, run nothing.
    done = subprocess.run(["make", "-nB", target], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return done.stdout


def test_make_run_installs_no_test_plugin_and_make_test_does() -> None:
    assert "tests/plugins" not in _make_dry_run("run")
    assert "tests/plugins/tropa_slack_step" in _make_dry_run("test")


def test_validate_does_not_announce_plugins() -> None:
    assert "slack" in registry().plugins, "the test plugin is installed by `make test`"
    done = subprocess.run([str(Path(sys.executable).parent / "tropa"), "validate",
                           str(ROOT / "examples" / "birthday-bonus.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "plugin" not in done.stdout + done.stderr


async def test_a_worker_announces_each_plugin_once(time_skipping: WorkflowEnvironment,
                                                   engine: sa.Engine, settings: Settings,
                                                   task_queue: str) -> None:
    with capture_logs() as logs:
        build_workers(time_skipping.client, settings, engine, task_queue=task_queue)
    loaded = [e for e in logs if e["event"] == "step_type_plugin_loaded"]
    assert [e["step_type"] for e in loaded] == ["slack"]

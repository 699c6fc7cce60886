"""The fast exit that sidesteps the SDK's shutdown abort never hides a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("body", "status"), [
    ("def test_ok():\n    assert True\n", 0),
    ("def test_broken():\n    assert 1 == 2\n", 1),
    ("def test_error():\n    raise RuntimeError('boom')\n", 1),
    ("", 5),
])
def test_pytest_status_survives_the_fast_exit(tmp_path: Path, body: str, status: int) -> None:
    (tmp_path / "test_sample.py").write_text(body)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.exit_status",
         "-p", "no:cacheprovider", str(tmp_path / "test_sample.py")],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == status, done.stdout + done.stderr
    if status == 1:
        assert "1 failed" in done.stdout

"""Pytest plugin: leave with pytest's own status, past the SDK's abort at shutdown.

The temporalio SDK's native runtime can abort with exit code 134 while the interpreter
tears down (sdk-python issue 300). Once the summary is printed and every plugin has
finished, pytest's status is final: flush and `os._exit` with it. A failing run keeps its
non-zero status; only the teardown that could turn a green run red is skipped.
"""

from __future__ import annotations

import os
import sys

import pytest

_status: list[int] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(exitstatus: int) -> None:
    _status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure() -> None:
    if _status and os.environ.get("TROPA_TEST_NO_FAST_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status[-1])

"""Log lines go to the stderr of the moment, even after the stream they started on is closed."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest
import structlog

from tropa.logs import configure, get_logger


@pytest.fixture
def restored_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("restored_logging")
def test_a_closed_stderr_does_not_fail_the_code_that_logs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure("INFO")
    log = get_logger("test")
    log.info("before_swap", customer_id="c-1")
    first.close()

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("after_swap", customer_id="c-1", phone="+79160000001")

    line = second.getvalue()
    assert "event='after_swap'" in line
    assert "customer_id='c-1'" in line
    assert "+7916" not in line

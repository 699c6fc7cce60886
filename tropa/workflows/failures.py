"""Why a step failed for good, in words for the run's status (and never a personal value)."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeout


def failure_reason(err: ActivityError) -> str:
    """The error's type and first line only: later lines of a database error carry the
    statement's values."""
    cause = err.cause
    if isinstance(cause, ActivityTimeout):
        what = f"timed out ({cause.type.name.lower() if cause.type is not None else 'timeout'})"
    elif isinstance(cause, ApplicationError):
        first = cause.message.splitlines()[0][:200] if cause.message else ""
        what = f"{cause.type or 'error'}: {first}"
    else:
        what = type(cause).__name__ if cause is not None else "error"
    if err.retry_state == RetryState.TIMEOUT or isinstance(cause, ActivityTimeout):
        return f"{err.activity_type or 'activity'} did not finish in time; last error: {what}"
    return what

"""Activity options as the step-type registry declares them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from tropa.dsl.plan import ActivityCall


def activity_options(call: ActivityCall) -> dict[str, Any]:
    """The keyword arguments of `workflow.execute_activity` a step type's call declares."""
    retry = call.retry
    return {
        "task_queue": call.task_queue,
        "start_to_close_timeout": timedelta(seconds=call.start_to_close_seconds),
        "schedule_to_close_timeout": (timedelta(seconds=call.schedule_to_close_seconds)
                                      if call.schedule_to_close_seconds else None),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=retry.initial_interval_seconds),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
            maximum_attempts=retry.maximum_attempts,
            non_retryable_error_types=retry.non_retryable_error_types or None,
        ),
    }

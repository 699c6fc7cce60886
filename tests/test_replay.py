"""Saved workflow histories must replay: interpreter and broadcast changes cannot silently
break runs in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tropa.workflows.broadcast import Broadcast
from tropa.workflows.journey_run import JourneyRun

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.name)
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    # broadcast_*.json: tests/histories/record_broadcast.py; the rest: tests/histories/record.py
    replayer = Replayer(workflows=[JourneyRun, Broadcast],
                        data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_there_is_a_history_to_replay() -> None:
    assert HISTORIES, "record them with: .venv/bin/python -m tests.histories.record <tag>"

"""Journeys: versions with their source YAML, run counts, validation problems."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class VersionCounts(BaseModel):
    """Runs of one version, from Temporal visibility (eventually consistent)."""

    running: int = 0
    finished: int = Field(default=0, description="Completed, exited, cancelled, failed")


class JourneyVersionPublic(BaseModel):
    """One stored version of a journey, with the YAML it was made from."""

    journey: str
    version: str
    created_at: datetime
    published_at: datetime | None
    source_yaml: str
    plan: dict[str, Any]


class VersionSummary(VersionCounts):
    """A version in a journey listing."""

    version: str
    created_at: datetime
    published_at: datetime | None
    live: bool


class JourneySummary(BaseModel):
    """A journey with its status and run counts per version."""

    name: str
    status: str = Field(description="draft, published, paused or archived")
    live_version: str | None
    running: int
    finished: int
    versions: list[VersionSummary]


class VersionDetail(VersionSummary):
    """A version with the YAML it was made from and its compiled Plan."""

    source_yaml: str
    plan: dict[str, Any]


class JourneyPublic(BaseModel):
    """A journey with every version's YAML, Plan and run counts, oldest first."""

    name: str
    status: str = Field(description="draft, published, paused or archived")
    live_version: str | None
    running: int
    finished: int
    versions: list[VersionDetail]


class JourneyValidated(BaseModel):
    """What a valid journey compiles to; nothing is stored."""

    journey: str
    version: str
    trigger: str
    category: str
    re_entry: str
    plan: dict[str, Any]


class ProblemOut(BaseModel):
    """One error in a journey file."""

    message: str
    line: int | None
    column: int | None
    path: str
    hint: str | None
    text: str


class JourneyProblems(BaseModel):
    """Every problem in a journey file, each with line and column."""

    detail: str
    problems: list[ProblemOut]

"""Saved audiences: a filter by name, its preview, and the problems of a bad filter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tropa.api.schemas.journeys import ProblemOut


class AudiencePublic(BaseModel):
    """A saved audience: its filter as written (`source`) and in normalised JSON (`filter`)."""

    name: str
    description: str
    filter: dict[str, Any]
    source: str = Field(description="The document as it was sent (YAML or JSON)")
    created_at: datetime
    updated_at: datetime


class AudiencePreview(BaseModel):
    """How many customers a filter holds now, and the first few of them by id."""

    count: int
    sample: list[str] = Field(description="Up to 20 customer ids, in id order")
    as_of: datetime


class AudienceProblems(BaseModel):
    """Every problem in an audience document, each with line and column."""

    detail: str
    problems: list[ProblemOut]

"""Inputs and results of the interpreter's own local activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EvaluateInput(BaseModel):
    """A condition to evaluate for a customer, with the run's context."""

    customer_id: str
    expression: str
    context: dict[str, Any] = Field(default_factory=dict)


class NextLocalTimeInput(BaseModel):
    """The next HH:MM in the customer's time zone after `after`."""

    customer_id: str
    at: str
    after: datetime

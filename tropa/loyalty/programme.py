"""The loyalty programme: levels with qualification thresholds and the welcome limit, in YAML.

```yaml
programme: default
levels:
  - {name: Basic, threshold: 0}
  - {name: Silver, threshold: 10000}
  - {name: Gold, threshold: 50000}
welcome: {reason: welcome, max_per_phone: 1, window: 365d}
```
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from tropa.dsl.durations import Duration, parse_duration
from tropa.errors import LoyaltyError


class Level(BaseModel):
    """A level reached at `threshold` qualification points."""

    name: str = Field(min_length=1, max_length=64)
    threshold: int = Field(ge=0)


class WelcomeLimit(BaseModel):
    """At most `max_per_phone` accruals with this reason per phone number in `window`."""

    reason: str = "welcome"
    max_per_phone: int = Field(default=1, ge=0)
    window: Duration = "365d"

    def window_delta(self) -> timedelta:
        """The window as a timedelta."""
        return parse_duration(self.window)


class Programme(BaseModel):
    """A loyalty programme."""

    programme: str = Field(default="default", min_length=1, max_length=64)
    levels: list[Level] = Field(default_factory=lambda: [
        Level(name="Basic", threshold=0), Level(name="Silver", threshold=10_000),
        Level(name="Gold", threshold=50_000)])
    welcome: WelcomeLimit = Field(default_factory=WelcomeLimit)

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[Level]) -> list[Level]:
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ValueError("level names must be unique")
        return sorted(levels, key=lambda lv: lv.threshold)

    def level_for(self, points: int) -> str | None:
        """The highest level whose threshold `points` reaches, or None."""
        reached = [lv.name for lv in self.levels if points >= lv.threshold]
        return reached[-1] if reached else None


def load_programme(path: Path | None) -> Programme:
    """The programme from a YAML file, or the default one; errors name the file and field."""
    if path is None:
        return Programme()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LoyaltyError(f"{path}: cannot read the loyalty programme: {exc}") from exc
    try:
        return Programme.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LoyaltyError(f"{path}: `{where}`: {first['msg']}") from exc

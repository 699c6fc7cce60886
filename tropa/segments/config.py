"""The RF configuration: window, recency and frequency bands, and the grid of segments.

A configuration is YAML; every problem is reported with its line and column, like a journey.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path as FilePath

from tropa.dsl.positions import Path, SourceMap, load_with_positions
from tropa.errors import Problem

SEGMENTS: dict[str, str] = {
    "new": "bought once, recently: welcome them and ask for a second purchase",
    "promising": "bought a few times, recently: build the habit",
    "loyal": "buy often and recently: reward and keep them",
    "wandering": "bought a while ago, not often: remind them the shop exists",
    "at_risk": "used to buy often, but not lately: win them back before they go",
    "dormant": "bought a few times, long ago: wake them with an offer",
    "lost": "bought once, long ago: a last attempt, or let them rest",
}
"""The seven segments of seed 002 and what each means for a marketer."""

DEFAULT_CONFIG = "rf_default.yaml"


class RfConfigInvalid(ValueError):
    """An RF configuration that cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n\n".join(p.render() for p in problems))


@dataclass(frozen=True)
class Band:
    """One band: a name and its inclusive upper bound (None for the last, open-ended band)."""

    name: str
    upper: int | None


@dataclass(frozen=True)
class RfConfig:
    """A validated RF configuration."""

    window_days: int
    recency: tuple[Band, ...]
    frequency: tuple[Band, ...]
    grid: dict[tuple[str, str], str]

    def recency_band(self, days: int) -> str:
        """The recency band of a customer whose last purchase was `days` whole days ago."""
        return _band(self.recency, days)

    def frequency_band(self, purchases: int) -> str:
        """The frequency band of `purchases` purchases within the window (at least one)."""
        return _band(self.frequency, max(purchases, 1))

    def segment(self, days_since_last: int | None, purchases_in_window: int) -> str | None:
        """The segment of a customer; None for a customer who never bought anything."""
        if days_since_last is None:
            return None
        cell = (self.recency_band(max(days_since_last, 0)),
                self.frequency_band(purchases_in_window))
        return self.grid[cell]

    def recency_bounds(self) -> list[int]:
        """Days since the last purchase at which a customer enters the next recency band."""
        return [band.upper + 1 for band in self.recency if band.upper is not None]


def _band(bands: tuple[Band, ...], value: int) -> str:
    for band in bands:
        if band.upper is None or value <= band.upper:
            return band.name
    return bands[-1].name


def _lowest_bound(bands: list[Band], field: str) -> int:
    if bands and bands[-1].upper is not None:
        return bands[-1].upper + 1
    # A customer in a segment bought at least once, so the first frequency band holds one.
    return 1 if field == "frequency" else 0


def load_default() -> RfConfig:
    """Tropa's shipped configuration (documented in docs/segments.md)."""
    text = files("tropa.segments").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    return parse(text, source=DEFAULT_CONFIG)


def load(path: FilePath) -> RfConfig:
    """A configuration file; RfConfigInvalid names the line and column of every problem."""
    return parse(path.read_text(encoding="utf-8"), source=str(path))


def parse(text: str, *, source: str = "<rf config>") -> RfConfig:
    """Validate configuration YAML; RfConfigInvalid carries every problem found."""
    raw, smap, problems = load_with_positions(text, source)
    if problems:
        raise RfConfigInvalid(problems)
    checker = _Checker(smap)
    config = checker.config(raw)
    if checker.problems or config is None:
        raise RfConfigInvalid(checker.problems)
    return config


class _Checker:
    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str, hint: str, *, at_key: bool = False) -> None:
        self.problems.append(self.smap.problem(path, message, hint=hint, at_key=at_key))

    def config(self, raw: object) -> RfConfig | None:
        if not isinstance(raw, dict):
            self.fail((), "an RF configuration is a mapping",
                      "give `window_days`, `recency`, `frequency` and `grid`")
            return None
        for key in raw:
            if key not in ("window_days", "recency", "frequency", "grid"):
                self.fail((key,), f"unknown field `{key}`",
                          "the fields are window_days, recency, frequency and grid", at_key=True)
        window = raw.get("window_days")
        if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 3660:
            self.fail(("window_days",), "`window_days` must be a whole number of days, 1 to 3660",
                      "for example `window_days: 365`")
            window = 365
        recency = self.bands(raw.get("recency"), "recency", "max_days")
        frequency = self.bands(raw.get("frequency"), "frequency", "max_purchases")
        grid = self.grid(raw.get("grid"), recency, frequency)
        if recency is None or frequency is None or grid is None:
            return None
        return RfConfig(window_days=window, recency=recency, frequency=frequency, grid=grid)

    def bands(self, raw: object, field: str, bound: str) -> tuple[Band, ...] | None:
        example = f"`- {{band: recent, {bound}: 30}}`"
        if not isinstance(raw, list) or len(raw) < 2:
            self.fail((field,), f"`{field}` must list at least two bands, lowest first",
                      f"each item is {example}; the last one has no `{bound}`")
            return None
        bands: list[Band] = []
        ok = True
        for i, item in enumerate(raw):
            path: Path = (field, i)
            last = i == len(raw) - 1
            if not isinstance(item, dict) or not isinstance(item.get("band"), str):
                self.fail(path, "a band needs a `band` name", f"write it as {example}")
                ok = False
                continue
            for key in item:
                if key not in ("band", bound):
                    self.fail((*path, key), f"unknown field `{key}` in a {field} band",
                              f"a band has `band` and `{bound}`", at_key=True)
                    ok = False
            name, upper = item["band"], item.get(bound)
            if any(b.name == name for b in bands):
                self.fail((*path, "band"), f"band `{name}` is listed twice",
                          "give every band its own name")
                ok = False
            if last and upper is not None:
                self.fail((*path, bound), f"the last {field} band is open-ended",
                          f"remove `{bound}` from the last band")
                ok = False
            elif not last and (not isinstance(upper, int) or isinstance(upper, bool)
                               or upper < _lowest_bound(bands, field)):
                self.fail((*path, bound if upper is not None else "band"),
                          f"`{bound}` must be a whole number above the previous band's",
                          "list bands from the lowest to the highest")
                ok = False
            bands.append(Band(name=name, upper=upper if isinstance(upper, int) else None))
        return tuple(bands) if ok else None

    def grid(self, raw: object, recency: tuple[Band, ...] | None,
             frequency: tuple[Band, ...] | None) -> dict[tuple[str, str], str] | None:
        if not isinstance(raw, dict):
            self.fail(("grid",), "`grid` maps every recency band to its frequency bands",
                      "for example `recent: {once: new, not_often: promising, often: loyal}`")
            return None
        if recency is None or frequency is None:
            return None
        grid: dict[tuple[str, str], str] = {}
        seen: set[tuple[str, str]] = set()
        r_names = [b.name for b in recency]
        f_names = [b.name for b in frequency]
        for r_name, row in raw.items():
            if r_name not in r_names:
                self.fail(("grid", r_name), f"`{r_name}` is not a recency band",
                          f"the recency bands are {', '.join(r_names)}", at_key=True)
                continue
            if not isinstance(row, dict):
                self.fail(("grid", r_name), f"row `{r_name}` must map frequency bands to "
                          "segments", f"for example `{{{f_names[0]}: new}}`")
                continue
            for f_name, segment in row.items():
                path: Path = ("grid", r_name, f_name)
                seen.add((r_name, f_name))
                if f_name not in f_names:
                    self.fail(path, f"`{f_name}` is not a frequency band",
                              f"the frequency bands are {', '.join(f_names)}", at_key=True)
                elif segment not in SEGMENTS:
                    self.fail(path, f"`{segment}` is not a segment",
                              f"the segments are {', '.join(SEGMENTS)}")
                else:
                    grid[(r_name, f_name)] = segment
        for r_name in r_names:
            for f_name in f_names:
                if (r_name, f_name) not in seen:
                    self.fail(("grid", r_name) if r_name in raw else ("grid",),
                              f"cell ({r_name}, {f_name}) has no segment",
                              f"add `{f_name}: <segment>` to row `{r_name}`")
        return grid

"""YAML loading that remembers where every value stood, so errors can name line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from tropa.errors import Problem

Path = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Positions (1-based line, column) of every mapping key and value, by JSON path."""

    source: str
    text: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def problem(
        self, path: Path, message: str, *, hint: str | None = None, at_key: bool = False
    ) -> Problem:
        """A Problem placed at the nearest known position of `path`."""
        line, column = self.position(path, at_key=at_key)
        lines = self.lines
        line_text = lines[line - 1] if 0 < line <= len(lines) else None
        return Problem(
            message,
            source=self.source,
            line=line,
            column=column,
            line_text=line_text,
            path=render_path(path),
            hint=hint,
        )

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines, split once however many problems quote them."""
        return self.text.splitlines()

    def position(self, path: Path, *, at_key: bool = False) -> tuple[int, int]:
        """Where `path` stands, falling back to its closest ancestor."""
        probe = path
        while True:
            table = self.keys if at_key and probe in self.keys else self.values
            if probe in table:
                return table[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]


def render_path(path: Path) -> str:
    """A JSON-path-like spelling: `steps[2].send.channel`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Bounds of a journey file (documented in docs/journeys.md, "Limits"). A real journey of
# 500 steps is about 40 KB, 3,000 values and 10 levels deep.
MAX_BYTES = 512 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000

# libyaml's C parser when present (it is about ten times faster), with positions all the same.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_DEFAULT_TAGS = {yaml.SequenceStartEvent: "tag:yaml.org,2002:seq",
                 yaml.MappingStartEvent: "tag:yaml.org,2002:map"}


class _Refused(Exception):
    def __init__(self, message: str, mark: Any, hint: str) -> None:
        super().__init__(message)
        self.message, self.mark, self.hint = message, mark, hint


def load_with_positions(text: str, source: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse YAML into plain values plus a SourceMap; syntax errors come back as Problems.

    Journey files are plain data: anchors and aliases, custom tags, more than MAX_DEPTH
    levels, MAX_VALUES values or MAX_BYTES bytes are refused at their place, so no file can
    make the loader stall or exhaust memory."""
    smap = SourceMap(source=source, text=text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return None, smap, [Problem(
            f"the file is {size} bytes; a journey file may have at most {MAX_BYTES} bytes",
            source=source, line=1, column=1,
            hint="split it into several journeys, or move long texts into shorter ones")]
    problems: list[Problem] = []
    try:
        value = _Builder(text, smap, problems).document()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return None, smap, [_problem(text, source, mark, f"YAML syntax error: "
                                     f"{exc.problem or exc.context}",
                                     "check indentation, colons and quotes on this line or "
                                     "the one above")]
    except _Refused as exc:
        return None, smap, [_problem(text, source, exc.mark, exc.message, exc.hint)]
    except yaml.reader.ReaderError as exc:  # a control character; no mark, a position
        before = text[:exc.position]
        place = _Mark(before.count("\n"), len(before) - before.rfind("\n") - 1)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return None, smap, [_problem(text, source, place, f"the control character U+{code:04X} "
                                     "is not allowed in YAML", "remove it; journeys are plain "
                                     "text")]
    if value is _EMPTY:
        return None, smap, [Problem("the file is empty; a journey needs at least `journey:` "
                                    "and `steps:`", source=source, line=1, column=1)]
    return value, smap, problems


def _problem(text: str, source: str, mark: Any, message: str, hint: str) -> Problem:
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    return Problem(message, source=source, line=line, column=column,
                   line_text=lines[line - 1] if 0 < line <= len(lines) else None, hint=hint)


_EMPTY = object()


@dataclass
class _Mark:
    line: int
    column: int


class _Builder:
    """Builds plain values straight from the parser's events, recording positions; never
    builds a node tree, so it is fast and can refuse a file at the first bad event."""

    def __init__(self, text: str, smap: SourceMap, problems: list[Problem]) -> None:
        self.loader: Any = _Loader(text)
        self.smap = smap
        self.problems = problems
        self.count = 0

    def document(self) -> Any:
        loader = self.loader
        try:
            loader.get_event()  # stream start
            if loader.check_event(yaml.StreamEndEvent):
                return _EMPTY
            loader.get_event()  # document start
            value = self.value((), 0)
            loader.get_event()  # document end
            if not loader.check_event(yaml.StreamEndEvent):
                raise _Refused("the file holds more than one YAML document (`---`)",
                               loader.peek_event().start_mark,
                               "keep one journey per file; remove the `---` line")
            return value
        finally:
            loader.dispose()

    def value(self, path: Path, depth: int) -> Any:
        event: Any = self.loader.get_event()
        mark = event.start_mark
        self.smap.values[path] = (mark.line + 1, mark.column + 1)
        self._check(event, depth)
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event)
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not self.loader.check_event(yaml.SequenceEndEvent):
                items.append(self.value((*path, len(items)), depth + 1))
            self.loader.get_event()
            return items
        result: dict[str, Any] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event: Any = self.loader.get_event()
            self._check(key_event, depth + 1)
            if not isinstance(key_event, yaml.ScalarEvent):
                raise _Refused("a key must be a plain word, not a list or mapping",
                               key_event.start_mark, "write `name: value`")
            key: str = key_event.value
            key_mark: Any = key_event.start_mark
            child = (*path, key)
            self.smap.keys[child] = (key_mark.line + 1, key_mark.column + 1)
            if key in result:
                self.problems.append(self.smap.problem(child, f"`{key}` is given twice",
                                                       at_key=True, hint="keep one of them"))
            result[key] = self.value(child, depth + 1)
        self.loader.get_event()
        return result

    def _check(self, event: Any, depth: int) -> None:
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"aliases (`*{event.anchor}`) are not allowed in journey files",
                           mark, "write the value out where it is needed")
        if event.anchor is not None:
            raise _Refused(f"anchors (`&{event.anchor}`) are not allowed in journey files",
                           mark, "remove the anchor and write values out where they are needed")
        self.count += 1
        if self.count > MAX_VALUES:
            raise _Refused(f"the file has more than {MAX_VALUES} values", mark,
                           "split it into several journeys")
        default = _DEFAULT_TAGS.get(type(event))
        if default is not None:
            if depth >= MAX_DEPTH:
                raise _Refused(f"the file nests lists and mappings more than {MAX_DEPTH} "
                               "levels deep", mark, "flatten the structure")
            if event.tag not in (None, "!", default):
                raise _Refused(f"the tag `{event.tag}` is not allowed in journey files", mark,
                               "remove the tag")

    def _scalar(self, event: Any) -> Any:
        if "\x00" in event.value:
            raise _Refused("the value contains a NUL character (`\\0`)", event.start_mark,
                           "remove it; journeys are plain text")
        tag = event.tag
        implicit = tag is None or tag == "!"
        if implicit:
            tag = str(self.loader.resolve(yaml.ScalarNode, event.value, event.implicit))
        if tag == _STR:
            return event.value
        if tag not in yaml.SafeLoader.yaml_constructors:
            raise _Refused(f"the tag `{tag}` is not allowed in journey files",
                           event.start_mark, "remove the tag")
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError, yaml.YAMLError,
                # PyYAML's constructors trip on what a tag does not fit in their own ways:
                # `!!int ''` indexes past the end, `!!bool x` misses its table,
                # `!!timestamp x` reads a failed match.
                IndexError, KeyError, AttributeError, TypeError):
            if implicit:  # looks like a date but is none (2026-02-30): validation judges it
                return event.value
            raise _Refused(f"`{event.value}` is not a valid `{tag.rsplit(':', 1)[-1]}`",
                           event.start_mark, "fix the value or remove the tag") from None

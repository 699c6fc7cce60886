"""YAML loading that remembers where every value stood, so errors can name line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
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
        lines = self.text.splitlines()
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


class _Loader(yaml.SafeLoader):
    """Safe loader; the positions are collected from the composed node tree."""


def load_with_positions(text: str, source: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse YAML into plain values plus a SourceMap; syntax errors come back as Problems."""
    smap = SourceMap(source=source, text=text)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        return (
            None,
            smap,
            [
                Problem(
                    f"YAML syntax error: {exc.problem or exc.context}",
                    source=source,
                    line=line,
                    column=column,
                    line_text=lines[line - 1] if 0 < line <= len(lines) else None,
                    hint="check indentation, colons and quotes on this line or the one above",
                )
            ],
        )
    if node is None:
        return None, smap, [Problem("the file is empty; a journey needs at least `journey:` "
                                    "and `steps:`", source=source, line=1, column=1)]
    problems: list[Problem] = []
    value = _convert(node, (), smap, problems)
    return value, smap, problems


def _convert(node: yaml.Node, path: Path, smap: SourceMap, problems: list[Problem]) -> Any:
    smap.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _Loader.construct_scalar(_Loader(""), key_node) if isinstance(
                key_node, yaml.ScalarNode) else str(key_node.value)
            key = str(key)
            child = (*path, key)
            smap.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                problems.append(smap.problem(child, f"`{key}` is given twice", at_key=True,
                                             hint="keep one of them"))
            result[key] = _convert(value_node, child, smap, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), smap, problems) for i, item in enumerate(node.value)]
    loader = _Loader("")
    return loader.construct_object(node, deep=True)

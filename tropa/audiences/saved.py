"""Saved audiences: filters stored by name, and resolving `{saved: <name>}` to a filter."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from tropa.audiences.conditions import Audience
from tropa.audiences.parse import FilterReader, parse_audience
from tropa.dsl.positions import SourceMap, load_with_positions
from tropa.errors import AudienceInvalid, AudienceNotFound, Problem
from tropa.store.audience_models import SavedAudience

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
DOCUMENT_KEYS = ("description", "filter")


def resolve(session: Session, spec: dict[str, Any]) -> Audience:
    """The Audience of a filter, or of `{"saved": "<name>"}` from the saved ones."""
    if isinstance(spec, dict) and "saved" in spec:
        name = spec["saved"]
        if len(spec) != 1 or not isinstance(name, str):
            raise AudienceInvalid([Problem(
                "`saved:` stands alone and names a saved audience", path="saved",
                hint="write `{saved: loyal-moscow}`, or give a filter instead")])
        row = session.get(SavedAudience, name)
        if row is None:
            raise AudienceNotFound(name)
        return parse_audience(row.filter, name=f"<audience {name}>")
    return parse_audience(spec)


def read_document(text: str, source: str = "<request>") -> tuple[str, Audience]:
    """A saved audience's document (YAML or JSON: `description:` and `filter:`) checked,
    every problem placed by line and column."""
    raw, smap, problems = load_with_positions(text, source)
    if problems:
        raise AudienceInvalid(problems)
    return check_document(raw, smap)


def check_document(raw: Any, smap: SourceMap) -> tuple[str, Audience]:
    """The description and Audience of a parsed document, or AudienceInvalid."""
    example = "filter: {all: [{segment: loyal}]}"
    if not isinstance(raw, dict):
        raise AudienceInvalid([smap.problem((), "an audience is a mapping with `filter:` "
                                            "and an optional `description:`",
                                            hint=f"write `{example}`")])
    problems: list[Problem] = []
    for key in raw:
        if key not in DOCUMENT_KEYS:
            problems.append(smap.problem((key,), f"unknown field `{key}`", at_key=True,
                                         hint="fields here: description, filter"))
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > 1000:
        problems.append(smap.problem(("description",), "`description` is text of at most "
                                     "1000 characters"))
    if "filter" not in raw:
        problems.append(smap.problem((), "missing required field `filter`",
                                     hint=f"add it, e.g. `{example}`"))
    reader = FilterReader(smap)
    audience = reader.audience(raw["filter"], ("filter",)) if "filter" in raw else None
    problems.extend(reader.problems)
    if problems or audience is None:
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise AudienceInvalid(problems)
    return str(description), audience


def check_name(name: str) -> None:
    """A saved audience's name: lower case letters, digits, - and _."""
    if not _NAME.match(name):
        raise AudienceInvalid([Problem(
            f"'{name[:100]}' is not an audience name", path="name",
            hint="use lower case letters, digits, - and _, e.g. loyal-moscow")])


def put(session: Session, name: str, *, source: str, description: str, audience: Audience,
        now: datetime) -> tuple[SavedAudience, bool]:
    """Create or replace the saved audience `name`; True when it was created."""
    check_name(name)
    row = session.get(SavedAudience, name, with_for_update=True)
    created = row is None
    if row is None:
        row = SavedAudience(name=name, source=source, description=description,
                            filter=audience.spec, created_at=now, updated_at=now)
        session.add(row)
    else:
        row.source, row.description, row.filter = source, description, audience.spec
        row.updated_at = now
    session.flush()
    return row, created


def get(session: Session, name: str) -> SavedAudience:
    """The saved audience `name`, or AudienceNotFound."""
    row = session.get(SavedAudience, name)
    if row is None:
        raise AudienceNotFound(name)
    return row


def all_saved(session: Session) -> list[SavedAudience]:
    """Every saved audience, by name."""
    return list(session.exec(select(SavedAudience).order_by(col(SavedAudience.name))))


def delete(session: Session, name: str) -> None:
    """Remove the saved audience `name`, or AudienceNotFound."""
    session.delete(get(session, name))

"""ui_schema/: generated from the registry, checked in, and true to the language."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tropa.channels.catalog import CHANNELS
from tropa.dsl.compiler import compile_journey
from tropa.steps.builtin import build_registry
from tropa.ui_schema import FORMS_FILE, SCHEMA_FILE, generated_files

ROOT = Path(__file__).resolve().parents[1]
UI_SCHEMA = ROOT / "ui_schema"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
TROPA = Path(sys.executable).parent / "tropa"
BUILTINS = build_registry(plugins=False)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads((UI_SCHEMA / SCHEMA_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_checked_in_files_match_the_registry() -> None:
    for name, text in generated_files(BUILTINS).items():
        checked_in = (UI_SCHEMA / name).read_text(encoding="utf-8")
        assert checked_in == text, f"ui_schema/{name} is stale; run `tropa schema`"


def test_schema_command_regenerates_and_check_fails_when_stale(tmp_path: Path) -> None:
    stale = subprocess.run([TROPA, "schema", "--check", "--out", tmp_path],
                           capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1
    assert f"{SCHEMA_FILE}: stale; regenerate with `tropa schema" in stale.stderr

    wrote = subprocess.run([TROPA, "schema", "--out", tmp_path],
                           capture_output=True, text=True, timeout=60)
    assert wrote.returncode == 0, wrote.stderr
    for name in (SCHEMA_FILE, FORMS_FILE):
        assert (tmp_path / name).read_text() == (UI_SCHEMA / name).read_text()
    fresh = subprocess.run([TROPA, "schema", "--check", "--out", tmp_path],
                           capture_output=True, text=True, timeout=60)
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_validate_against_the_schema(
        path: Path, validator: jsonschema.Draft7Validator) -> None:
    text = path.read_text(encoding="utf-8")
    compile_journey(text, str(path))  # the language itself accepts it
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_every_step_and_parameter_is_described(schema: dict[str, Any]) -> None:
    step = schema["$defs"]["step"]
    assert list(step["properties"]) == BUILTINS.names()
    for step_type in BUILTINS:
        entry = step["properties"][step_type.name]
        assert entry["description"] == step_type.description
        assert entry["examples"], step_type.name
        params = schema["$defs"][step_type.params.__name__]
        fields = {info.alias or name for name, info in step_type.params.model_fields.items()}
        assert set(params["properties"]) == fields
        for name, prop in params["properties"].items():
            assert prop.get("description"), f"{step_type.name}.{name} has no description"
    assert set(schema["required"]) == {"journey", "trigger", "steps"}
    assert schema["properties"]["steps"]["items"] == {"$ref": "#/$defs/step"}


@pytest.mark.parametrize(("step", "where", "wrong"), [
    ("- sned: {channel: sms, text: hi}", [0], "'sned' was unexpected"),
    ("- wait: 1x", [0, "wait"], "not valid"),
    ("- send: {channel: fax, text: hi}", [0, "send"], "not valid"),
    ("- branch: {if: a, then: [{wait: soon}]}", [0, "branch"], "not valid"),
    ("- {wait: 1h, exit: done}", [0], "has too many properties"),
], ids=["unknown-step", "bad-duration", "unknown-channel", "nested-bad-duration", "two-keys"])
def test_the_schema_rejects_what_the_language_rejects(
        validator: jsonschema.Draft7Validator, step: str, where: list[Any], wrong: str) -> None:
    doc = yaml.safe_load(f"journey: j\ntrigger: {{event: go}}\nsteps:\n  {step}\n")
    errors = list(validator.iter_errors(doc))
    assert [(list(e.absolute_path)[1:], wrong in e.message) for e in errors] == [(where, True)]


def test_shorthands_and_bare_exit_events_are_accepted(
        validator: jsonschema.Draft7Validator) -> None:
    doc = yaml.safe_load('journey: j\ntrigger: {event: go}\nexit_on: [order.placed]\nsteps:\n'
                         '  - wait: 1d12h\n  - wait_until: "10:00"\n  - exit: bought\n  - exit:\n')
    assert list(validator.iter_errors(doc)) == []


def test_form_hints_cover_every_field_with_a_widget() -> None:
    forms = json.loads((UI_SCHEMA / FORMS_FILE).read_text(encoding="utf-8"))
    assert [f["type"] for f in forms["steps"]] == BUILTINS.names()
    by_type = {f["type"]: {field["name"]: field for field in f["fields"]} for f in forms["steps"]}
    for step_type in BUILTINS:
        fields = by_type[step_type.name]
        assert set(fields) == {i.alias or n for n, i in step_type.params.model_fields.items()}
        for field in fields.values():
            assert field["widget"] in forms["widgets"], field
            assert field["label"]
    assert by_type["send"]["channel"]["widget"] == "select"
    assert by_type["send"]["channel"]["enum"] == list(CHANNELS)
    assert by_type["send"]["text"]["widget"] == "template"
    assert by_type["wait"]["duration"]["widget"] == "duration"
    assert by_type["branch"]["if"]["widget"] == "expression"
    assert by_type["branch"]["then"]["widget"] == "steps"
    arms = by_type["split"]["arms"]
    assert arms["widget"] == "list"
    assert [f["widget"] for f in arms["item_fields"]] == ["text", "number", "steps"]
    header = {f["name"]: f for f in forms["journey"]["fields"]}
    assert header["re_entry"]["enum"] == ["restart", "ignore", "parallel", "once"]
    assert header["exit_on"]["item_shorthand"] == "event"

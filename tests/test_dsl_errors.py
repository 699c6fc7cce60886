"""A marketer's mistakes come back with file:line:column, the line, a caret and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tropa.dsl.compiler import compile_journey
from tropa.errors import JourneyInvalid

HEADER = "journey: j\ntrigger: {event: cart.updated}\nsteps:\n"


def problems(text: str) -> list[str]:
    with pytest.raises(JourneyInvalid) as info:
        compile_journey(text, "j.yaml")
    return [p.render() for p in info.value.problems]


def test_yaml_syntax_error_names_line_and_column() -> None:
    [error] = problems(HEADER + "  - wait: [1h\n")
    assert error.startswith("j.yaml:5:1: error: YAML syntax error")
    assert "hint:" in error


def test_unknown_step_type_suggests_the_closest() -> None:
    [error] = problems(HEADER + "  - sned: {channel: sms, text: hi}\n")
    assert error.startswith("j.yaml:4:5: error: unknown step type `sned`")
    assert "did you mean `send`?" in error
    assert "known step types: send, wait," in error
    assert "    - sned: {channel: sms, text: hi}\n        ^" in error


def test_bad_duration_explains_the_form() -> None:
    [error] = problems(HEADER + "  - wait: 1hh\n")
    assert error.startswith("j.yaml:4:11: error:")
    assert "'1hh' is not a duration" in error
    for form in ("30s", "15m", "4h", "3d", "2w"):
        assert form in error


def test_missing_required_field() -> None:
    [error] = problems(HEADER + "  - wait_for: {event: order.placed}\n")
    assert "j.yaml:4:15: error: missing required field `timeout`" in error
    assert "add `timeout:`" in error


def test_unknown_channel() -> None:
    [error] = problems(HEADER + "  - send: {channel: smz, text: hi}\n")
    assert error.startswith("j.yaml:4:21: error:")
    assert "unknown channel `smz`; did you mean `sms`?" in error


def test_expression_that_does_not_parse() -> None:
    [error] = problems(HEADER + "  - branch:\n      if: \"customer.phone_verified and\"\n"
                       "      then: [{wait: 1h}]\n")
    assert error.startswith("j.yaml:5:11: error: condition does not parse")


def test_unknown_field_is_named_with_a_guess() -> None:
    [error] = problems(HEADER + "  - send: {chanel: sms, channel: sms, text: hi}\n")
    assert "unknown field `chanel`" in error
    assert "did you mean `channel`?" in error


def test_every_error_in_a_file_is_reported() -> None:
    text = HEADER + (
        "  - wait: 1hh\n"
        "  - sned: {channel: sms, text: hi}\n"
        "  - branch:\n"
        "      if: \"x and\"\n"
        "      then:\n"
        "        - send: {channel: smz, text: hi}\n"
    )
    found = problems(text)
    assert [e.split(": error")[0] for e in found] == [
        "j.yaml:4:11", "j.yaml:5:5", "j.yaml:7:11", "j.yaml:9:27"]


def test_python_internals_are_refused_at_validation() -> None:
    found = problems(HEADER + "  - send: {channel: sms, text: \"{{ ''.__class__.__mro__ }}\"}\n")
    assert found
    assert all("not allowed: templates may not reach Python internals" in e for e in found)


def test_undefined_roots_are_errors() -> None:
    [error] = problems(HEADER + "  - send: {channel: sms, text: \"Hi {{ cutsomer.name }}\"}\n")
    assert "unknown variable `cutsomer`" in error
    assert "customer, event, steps, journey" in error


def test_duplicate_keys_are_errors() -> None:
    text = "journey: j\njourney: k\ntrigger: {event: e}\nsteps: [{wait: 1h}]\n"
    [error] = problems(text)
    assert error.startswith("j.yaml:2:1: error: `journey` is given twice")


@pytest.mark.parametrize("path", sorted(Path("examples").glob("*.yaml")), ids=str)
def test_shipped_examples_validate(path: Path) -> None:
    plan = compile_journey(path.read_text(), str(path))
    assert plan.steps


def _tropa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "tropa"), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_validate_command_prints_summary_and_exits_zero() -> None:
    done = _tropa("validate", "examples/abandoned-cart.yaml")
    assert done.returncode == 0, done.stderr
    assert "examples/abandoned-cart.yaml: ok  journey=abandoned-cart version=" in done.stdout


def test_validate_command_prints_errors_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEADER + "  - wait: 1hh\n  - sned: {}\n")
    done = _tropa("validate", "examples/abandoned-cart.yaml", str(bad))
    assert done.returncode == 1
    assert f"{bad}:4:11: error:" in done.stderr
    assert f"{bad}:5:5: error: unknown step type `sned`" in done.stderr
    assert f"{bad}: 2 errors" in done.stderr

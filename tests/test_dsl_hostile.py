"""The journey language cannot stall or crash Tropa: hostile files are refused at their place,
templates are never evaluated at validation, and renders are bounded in work and size."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from tests.support.journey_yaml import journey_dicts, journey_texts
from tropa.dsl import triggers
from tropa.dsl.compiler import compile_journey
from tropa.dsl.expressions import ExpressionError, check_condition, check_template, evaluate, render
from tropa.dsl.plan import Trigger
from tropa.dsl.positions import MAX_BYTES
from tropa.errors import JourneyInvalid

HEADER = "journey: j\ntrigger: {event: cart.updated}\nsteps:\n"


def billion_laughs() -> str:
    """Nine aliases of nine aliases, nine levels deep: 9**9 values from 300 bytes."""
    lines = ["lol: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        prev, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"l{level}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n" + HEADER + "  - exit: *i\n"


HOSTILE_FILES = {
    "billion laughs": (billion_laughs(), "j.yaml:1:6: error: anchors (`&a`) are not allowed"),
    "alias of itself": (HEADER + "  - exit: &me [*me]\n",
                        "j.yaml:4:11: error: anchors (`&me`) are not allowed"),
    "10,000-deep flow sequence": (HEADER + "  - exit: " + "[" * 10_000 + "]" * 10_000 + "\n",
                                  "j.yaml:4:"),
    "200-deep block sequence": (HEADER + "  - exit:\n" + "".join(
        "  " * (i + 3) + "-\n" for i in range(200)), "levels deep"),
    "python tag": (HEADER + "  - exit: !!python/object/apply:os.system [ls]\n",
                   "j.yaml:4:11: error: the tag `tag:yaml.org,2002:python/object/apply"),
    "bad explicit int": (HEADER + "  - exit: !!int many\n", "j.yaml:4:11: error: `many` is not"),
    "two documents": (HEADER + "  - exit: x\n---\njourney: k\n",
                      "j.yaml:5:1: error: the file holds more than one YAML document"),
    "NUL character": (HEADER + '  - exit: "a\\0b"\n', "j.yaml:4:11: error: the value contains"),
    "complex key": (HEADER + "  - ? [a, b]\n    : 1\n", "j.yaml:4:7: error: a key must be"),
    "control character": (HEADER + "  - exit: a\x07b\n",
                          "j.yaml:4:12: error: the control character U+0007"),
    "too large": (HEADER + "  - exit: " + "x" * MAX_BYTES + "\n",
                  f"a journey file may have at most {MAX_BYTES} bytes"),
    "deep template": (HEADER + '  - send: {channel: sms, text: "{{ ' + "(" * 3000 + "1"
                      + ")" * 3000 + ' }}"}\n', "j.yaml:4:32: error: the expression nests"),
    "deep condition": (HEADER + '  - branch: {if: "' + "(" * 3000 + "1" + ")" * 3000
                       + '", then: [{exit: x}]}\n', "j.yaml:4:18: error: the expression nests"),
    "wait of 99999999999999 weeks": (HEADER + "  - wait: 99999999999999w\n",
                                     "j.yaml:4:11: error: `duration`: '99999999999999w' is "
                                     "longer than the longest wait, 3650d"),
    "wait with 5,000 digits": (HEADER + "  - wait: " + "9" * 5000 + "s\n",
                               "j.yaml:4:11: error: `duration`:"),
    "timestamp past 9999 in UTC": (HEADER + "  - wait_until: {timestamp: "
                                   "9999-12-31T23:59:59-01:00}\n",
                                   "j.yaml:4:29: error: `timestamp`: the timestamp must lie "
                                   "between 1970-01-01 and 2099-12-31"),
    "timestamp before year 1": (HEADER + "  - wait_until: {timestamp: "
                                "0001-01-01T00:00:00+01:00}\n", "j.yaml:4:29: error:"),
    "no such day": (HEADER + "  - wait_until: {timestamp: 2026-02-30T10:00:00+03:00}\n",
                    "j.yaml:4:29: error: `timestamp`:"),
    # PyYAML's constructors fail on these in their own ways (IndexError, KeyError,
    # AttributeError): each is one refusal at the value, never a 500.
    "empty tagged int": ("journey: j\ntrigger: {event: e, where: !!int ''}\n",
                         "j.yaml:2:28: error: `` is not a valid `int`"),
    "tagged bool that is none": ("journey: j\ntrigger: {event: e, where: !!bool 'x'}\n",
                                 "j.yaml:2:28: error: `x` is not a valid `bool`"),
    "tagged timestamp that is none": ("journey: j\ntrigger: {event: e, where: !!timestamp x}\n",
                                      "j.yaml:2:28: error: `x` is not a valid `timestamp`"),
    "literal key over the limit": (
        "journey: j\ntrigger: {event: e, key: \"" + "k" * 300 + "\"}\nsteps: [{exit: x}]\n",
        "j.yaml:2:26: error: `trigger.key`: the key's text is 300 characters"),
}


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_file_is_refused_at_its_place(name: str) -> None:
    text, expected = HOSTILE_FILES[name]
    with pytest.raises(JourneyInvalid) as info:
        compile_journey(text, "j.yaml")
    assert expected in info.value.problems[0].render()


def test_tropa_validate_refuses_a_bomb_with_its_place(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    deep = tmp_path / "deep.yaml"
    deep.write_text(HOSTILE_FILES["10,000-deep flow sequence"][0])
    done = subprocess.run([str(Path(sys.executable).parent / "tropa"), "validate", str(bomb),
                           str(deep)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{bomb}:1:6: error: anchors (`&a`) are not allowed in journey files" in done.stderr
    assert f"{deep}:4:" in done.stderr
    assert "Traceback" not in done.stderr


HEAVY_TEXT = "{{ 'a' * 10**9 }}"
HEAVY_CONDITION = "('a' * 10**9)|length > 1 and ([1] * 10**9)|length > 1"


def test_validation_never_evaluates_a_template() -> None:
    tracemalloc.start()
    try:
        assert check_template(HEAVY_TEXT) == []
        assert check_condition(HEAVY_CONDITION) == []
        compile_journey(HEADER + f'  - send: {{channel: sms, text: "{HEAVY_TEXT}"}}\n'
                        f'  - branch: {{if: "{HEAVY_CONDITION}", then: [{{exit: x}}]}}\n')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000  # evaluating `'a' * 10**9` would take a gigabyte


CONTEXT: dict[str, Any] = {"customer": {"first_name": "Olga"}, "steps": {}, "journey": {},
                           "event": {"data": {"items": list(range(1000)), "text": "ab"}}}

HOSTILE_TEMPLATES = [
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 7 ** 100000 }}",
    "{{ '%1000000000d' % 1 }}",
    "{{ '%1000000000d'|format(1) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ 'a'|center(1000000000) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ '{0:{1}}'.format(1, 1000000000) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in event.data['items'] %}{% for j in event.data['items'] %}"
    "{% for k in event.data['items'] %}{% endfor %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set a = 'x' * 1000000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}",
    "{% set a = 'x' * 1000000 %}{{ a|replace('x', a) }}",
    "{% set a = 'x' * 1000000 %}{{ a.replace('x', a) }}",
    "{% set a = 'x' * 100000 %}{{ a|join(a) }}",
    "{% set a = 'x' * 1000 %}{% for i in range(10000) %}{{ a }}{% endfor %}",
    "{% set s %}{% for i in range(10000) %}" + "x" * 5000 + "{% endfor %}{% endset %}{{ s }}",
    "{{ (range(10000)|list) * 1000 }}",
    "{{ lipsum(100000) }}",
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_render_is_bounded(template: str) -> None:
    with pytest.raises(ExpressionError):
        render(template, CONTEXT)


def test_ordinary_templates_still_render() -> None:
    assert render("{% for i in event.data['items'][:3] %}{{ i }},{% endfor %}"
                  "{{ customer.first_name|upper }} {{ 'ab' * 3 }} {{ 2 ** 10 }} "
                  "{{ '%05d'|format(42) }} {{ (event.data.text ~ 'c')|replace('b', '-') }}",
                  CONTEXT) == "0,1,2,OLGA ababab 1024 00042 a-c"
    assert evaluate("event.data['items']|length > 999 and 'b' in event.data.text", CONTEXT)


def test_large_numbers_in_ordinary_templates_are_fine() -> None:
    context = {**CONTEXT, "event": {"data": {"total": 125_000_000}}}
    assert render("{{ event.data.total|money('RUB') }} {{ event.data.missing|default(5000000) }} "
                  "{{ '{} RUB'.format(event.data.total) }} {{ dict(a=7000000).a }} "
                  "{{ event.data.total * 100 }} {{ '%d'|format(event.data.total) }}",
                  context) == ("125 000 000.00 RUB 5000000 125000000 RUB 7000000 12500000000 "
                               "125000000")


def test_conditions_are_bounded() -> None:
    with pytest.raises(ExpressionError):
        evaluate(HEAVY_CONDITION, CONTEXT)


def test_trigger_key_is_bounded() -> None:
    context = {**CONTEXT, "event": {"data": {"cart": "c" * 300}}}
    with pytest.raises(ExpressionError, match="renders to 300 characters; at most 100"):
        triggers.match(Trigger(event="e", key="{{ event.data.cart }}"), context)
    looping = ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
               "{% endfor %}x")
    with pytest.raises(ExpressionError, match="too much work"):
        triggers.match(Trigger(event="e", key=looping), context)
    assert triggers.match(Trigger(event="e", key="{{ event.data.cart[:5] }}"),
                          context) == (True, "ccccc")
    assert triggers.run_id_problem("journey/j/c-1/" + "k" * 300) is not None


@given(text=journey_texts())
@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_any_generated_journey_compiles_or_names_its_problems(text: str) -> None:
    try:
        compile_journey(text, "j.yaml")
    except JourneyInvalid as exc:
        assert exc.problems
        assert all(p.line is not None and p.column is not None for p in exc.problems)


@given(journey=journey_dicts(clean=True))
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_valid_journeys_compile(journey: dict[str, Any]) -> None:
    compile_journey(yaml.safe_dump(journey, sort_keys=False), "j.yaml")


@pytest.mark.parametrize("condition", ["customer.__class__", "(customer.__class__)",
                                       "customer._secret == 1", "customer['_x'] == 1"])
def test_conditions_may_not_reach_private_attributes(condition: str) -> None:
    [problem] = check_condition(condition)
    assert "is not allowed: templates may not reach Python internals" in problem


@pytest.mark.parametrize("source", [
    "Hi {{ customer.first_name }}, {{ event.data.cart_url }}",
    "{{ event.data.total | money('RUB') }} {{ customer._x }} {{ event.data.0 }}",
    "{{ nobody.x }} {{ customer.__class__ }}", "{{ customer.first_name", "{{- customer.x }}",
    "{{ event.data['_x'] }}", "{% for i in range(3) %}{{ i }}{% endfor %}",
])
def test_the_quick_template_check_agrees_with_jinja(source: str) -> None:
    from jinja2 import TemplateSyntaxError

    from tropa.dsl import expressions

    try:
        full = tuple(expressions._check_tree(expressions.ENV.parse(source)))
    except TemplateSyntaxError as exc:
        full = (f"template does not parse: {exc.message}",)
    assert tuple(check_template(source)) == full


def test_a_file_of_many_mistakes_reports_the_first_hundred() -> None:
    text = HEADER + "  - sned: 1\n" * 3_000
    with pytest.raises(JourneyInvalid) as info:
        compile_journey(text, "j.yaml")
    problems = info.value.problems
    assert len(problems) == 101
    assert problems[0].render().startswith("j.yaml:4:5: error: unknown step type `sned`")
    assert problems[-1].render().startswith(
        "j.yaml:104:5: error: and 2900 more problems from here on")

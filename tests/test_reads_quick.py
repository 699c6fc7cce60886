"""What a journey reads, and what a plain text renders to, are the same whether read quickly or
by Jinja's parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError

from tropa.dsl import reads
from tropa.dsl.expressions import ENV, check_condition, render

ROOTS = st.sampled_from(["customer", "event", "steps", "journey"])
PARTS = st.one_of(st.sampled_from(["data", "total", "first_name", "items", "event", "get",
                                   "_private", "sku"]),
                  st.integers(min_value=0, max_value=12).map(str))
PATHS = st.builds(lambda root, parts: ".".join([root, *parts]), ROOTS,
                  st.lists(PARTS, max_size=4))
FILTERS = st.sampled_from(["", " | money('RUB')", " | date", " | upper", " | default(\"x\")",
                           " | round(2)"])
OUTPUTS = st.builds(lambda path, flt, pad: "{{" + pad + path + flt + pad + "}}",
                    PATHS, FILTERS, st.sampled_from(["", " ", "  "]))
TEMPLATES = st.lists(st.tuples(st.sampled_from(["", "Hi ", ", item 3: ", "!"]), OUTPUTS),
                     max_size=4).map(lambda pieces: "".join(a + b for a, b in pieces))
OPERANDS = st.one_of(PATHS, st.sampled_from(["100", "2.5", "'vip'", '"x"', "true", "none"]))
CONDITIONS = st.builds(
    lambda first, rest: first + "".join(f" {op} {neg}{operand}" for op, neg, operand in rest),
    OPERANDS, st.lists(st.tuples(st.sampled_from(["==", "!=", ">", "<=", "and", "or", "in"]),
                                 st.sampled_from(["", "not "]), OPERANDS), max_size=3))


def parsed(text: str, *, condition: bool) -> list[reads.Chain] | None:
    """The chains by Jinja's parser; None where Jinja refuses the text."""
    if condition and not (text.startswith("{{") and text.endswith("}}")):
        text = "{{ " + text + " }}"
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError:
        return None
    found: list[reads.Chain] = []
    reads._chains(tree, found)
    return found


@settings(max_examples=300, deadline=None)
@given(TEMPLATES)
def test_simple_templates_read_what_the_parser_reads(text: str) -> None:
    assert reads._source_chains(text, condition=False) == parsed(text, condition=False)


@settings(max_examples=300, deadline=None)
@given(CONDITIONS, st.booleans())
def test_simple_conditions_read_what_the_parser_reads(text: str, wrapped: bool) -> None:
    source = "{{ " + text + " }}" if wrapped else text
    assert reads._source_chains(source, condition=True) == parsed(source, condition=True)
    # validation's quick check refuses to judge what Jinja would refuse (`a == not b`)
    if parsed(source, condition=True) is None:
        assert check_condition(source) != []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="{"), max_size=60))
def test_a_plain_text_renders_as_jinja_would_render_it(text: str) -> None:
    assert render(text, {}) == ENV.from_string(text).render()

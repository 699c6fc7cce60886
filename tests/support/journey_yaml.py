"""Hypothesis strategies for journey YAML as people and attackers write it: valid journeys,
journeys with mistakes, broken YAML, and hostile files (bombs, deep nesting, heavy
templates, out-of-range values)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st

TEMPLATES = [
    "Hi {{ customer.first_name }}", "{{ event.data.cart_url }}", "plain text",
    "{{ event.data.total | money('RUB') }}", "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{{ customer.first_name", "{{ _secret }}", "{{ nobody.knows }}", "{{ ''.__class__ }}",
    "{{ 'a' * 10**9 }}", "{{ '%1000000000d' % 1 }}", "{{ 'x'|center(10**9) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "{% macro f() %}{{ f() }}{% endmacro %}",
    "k" * 300, "\u202e\u0000", "{{ event.data['" + "x" * 50 + "'] }}",
]
CONDITIONS = [
    "customer.phone_verified", "event.data.total > 100", "true", "event.data.total >",
    "('a' * 10**9)|length > 1", "customer.__class__", "1 +", "nobody == 1",
    "(" * 2000 + "1" + ")" * 2000, "range(10**9)|list|length > 0",
]
DURATIONS: list[Any] = ["1h", "30m", "2d", "1d12h", "0s", "99999999999999w", "9" * 500 + "s",
                        "-1h", "1x", 12, None, "", 1.5, "3650d", "3651d"]
TIMESTAMPS = ["2026-12-01T10:00:00+03:00", "9999-12-31T23:59:59-01:00",
              "0001-01-01T00:00:00+01:00", "2026-02-30T10:00:00Z", "2026-12-01T10:00:00",
              "10000-01-01T00:00:00Z", "yesterday"]
EVENTS = ["cart.updated", "order.placed", "order.paid", "", "x" * 300, "a b"]
CHANNELS = ["sms", "email", "push", "telegram", "smz", ""]


class _Parts:
    """The pieces journeys are made of: only valid ones, or any."""

    def __init__(self, clean: bool) -> None:
        def pick(values: list[Any], valid: int) -> st.SearchStrategy[Any]:
            return st.sampled_from(values[:valid] if clean else values)

        self.texts = pick(TEMPLATES, 5) if clean else pick(TEMPLATES, 0) | st.text(max_size=40)
        self.conditions = (pick(CONDITIONS, 3) if clean
                           else pick(CONDITIONS, 0) | st.text(max_size=30))
        self.durations = pick(DURATIONS, 4)
        self.timestamps = pick(TIMESTAMPS, 1)
        self.events = pick(EVENTS, 3)
        self.channels = pick(CHANNELS, 4)
        self.names = pick(["gen", "gen-2", "Bad Name", "x" * 120], 2)
        self.re_entry = pick(["restart", "ignore", "parallel", "never"], 3)
        self.words = st.text(alphabet="abcdefgh-", min_size=1, max_size=10)
        self.weights = (st.integers(min_value=1, max_value=100) if clean
                        else st.integers(min_value=-2, max_value=10**40))
        bad_steps = [{"sned": {}}, {"wait": {"duration": "1h", "extra": 1}}, {}, "wait",
                     {"wait": "1h", "send": {}}]
        self.bad_steps: st.SearchStrategy[Any] = (
            st.nothing() if clean else st.sampled_from(bad_steps))

    def leaf(self) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(lambda d: {"wait": d}, self.durations),
            st.builds(lambda at: {"wait_until": at}, st.sampled_from(["10:00", "09:30"])),
            st.builds(lambda ts: {"wait_until": {"timestamp": ts}}, self.timestamps),
            st.builds(lambda c, t, s: {"send": {"channel": c, "text": t, "subject": s}},
                      self.channels, self.texts, self.texts),
            st.builds(lambda tags: {"update_customer": {"add_tags": tags}},
                      st.lists(self.words, min_size=1, max_size=3)),
            st.builds(lambda r: {"exit": r}, self.words),
            self.bad_steps,
        )

    def nested(self, children: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(lambda c, then, other: {"branch": {"if": c, "then": then, "else": other}},
                      self.conditions, children, children),
            st.builds(lambda e, w, t, steps: {"wait_for": {"event": e, "where": w, "timeout": t,
                                                           "on_timeout": steps}},
                      self.events, self.conditions, self.durations, children),
            st.builds(lambda weight, steps: {"split": {"arms": [{"name": "a", "weight": weight,
                                                                 "steps": steps}]}},
                      self.weights, children),
        )

    def steps(self) -> st.SearchStrategy[list[Any]]:
        return st.recursive(st.lists(self.leaf(), min_size=1, max_size=4),
                            lambda children: st.lists(self.leaf() | self.nested(children),
                                                      min_size=1, max_size=4),
                            max_leaves=12)


_CLEAN, _ANY = _Parts(clean=True), _Parts(clean=False)


@st.composite
def journey_dicts(draw: st.DrawFn, clean: bool = False) -> dict[str, Any]:
    """A journey as a mapping: with `clean`, a valid one; otherwise mostly plausible, with
    mistakes and hostile values among its parts."""
    parts = _CLEAN if clean else _ANY
    trigger: dict[str, Any] = {"event": draw(parts.events)}
    if draw(st.booleans()):
        trigger["where"] = draw(parts.conditions)
    if draw(st.booleans()):
        trigger["key"] = draw(parts.texts)
    journey: dict[str, Any] = {"journey": draw(parts.names), "trigger": trigger,
                               "steps": draw(parts.steps())}
    if draw(st.booleans()):
        journey["exit_on"] = [{"event": draw(parts.events), "where": draw(parts.conditions)}]
    if draw(st.booleans()):
        journey["re_entry"] = draw(parts.re_entry)
    return journey


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE = [
    _laughs(9) + "journey: j\ntrigger: {event: e}\nsteps: [{exit: *a8}]\n",
    "journey: j\ntrigger: {event: e}\nsteps: &s [*s]\n",
    "journey: j\ntrigger: {event: e}\nsteps: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "journey: j\ntrigger: {event: e}\nsteps:\n  - exit: !!python/object/apply:os.system [id]\n",
    "journey: j\ntrigger: {event: e}\nsteps: [{exit: x}]\n---\nmore: 1\n",
    "journey: j\ntrigger: {event: e}\nsteps: [{exit: \"\\0\"}]\n",
    "\ufeffjourney: j\n", "", "---\n", "[]", "null", "{", "journey: [unclosed",
]


@st.composite
def journey_texts(draw: st.DrawFn) -> str:
    """Journey YAML: valid journeys, journeys with mistakes, journeys damaged as text, hostile
    files, and hostile files spliced into journeys."""
    kind = draw(st.sampled_from(["valid", "mistaken", "damaged", "hostile", "spliced"]))
    if kind == "hostile":
        return draw(st.sampled_from(HOSTILE))
    text = yaml.safe_dump(draw(journey_dicts(clean=kind == "valid")), sort_keys=False,
                          allow_unicode=True)
    if kind == "damaged":
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        junk = draw(st.sampled_from([":", "  - ", "\t", "{{", "*x", "&y ", "]", "\"", "!!int ",
                                     "\x00", "\n---\n"]))
        return text[:cut] + junk + text[cut:]
    if kind == "spliced":
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(min_value=0, max_value=len(lines)))
        return "".join(lines[:at]) + draw(st.sampled_from(HOSTILE)) + "".join(lines[at:])
    return text

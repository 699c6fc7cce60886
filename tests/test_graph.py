"""`tropa graph`: a journey as a Mermaid flowchart with its waits, branches, split weights,
exits and exit_on rules; every shipped example draws."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tropa.dsl.compiler import compile_journey
from tropa.dsl.graph import mermaid

TROPA = str(Path(sys.executable).parent / "tropa")
EXAMPLES = sorted(Path(__file__).parents[1].joinpath("examples").glob("*.yaml"))
JOURNEY = """
journey: drawn
trigger: {event: cart.updated}
exit_on: [order.placed]
steps:
  - wait: 1h
  - split:
      arms:
        - {name: email, weight: 3, steps: [{send: {channel: email, subject: "Hi", text: x}}]}
        - {name: sms, weight: 1, steps: [{send: {channel: sms, text: "Hi"}}]}
      holdout: 1
  - wait_for: {event: order.paid, timeout: 1d, on_timeout: [{exit: "not paid"}]}
  - branch:
      if: customer.phone_verified
      then: [{send: {channel: sms, text: "Thanks, \\"friend\\""}}]
  - update_customer: {add_tags: [drawn]}
"""


def _check_edges(text: str) -> None:
    defined = set(re.findall(r"^  (\w+)[\[\(\{>]", text, re.M))
    for left, right in re.findall(r"^  (\w+) (?:--|-\.).*?(?:-->|\.->) (\w+)$", text, re.M):
        assert left in defined and right in defined, (left, right)


def test_a_journey_draws_with_weights_branches_exits_and_exit_on() -> None:
    text = mermaid(compile_journey(JOURNEY))
    assert text.startswith("flowchart TD\n")
    _check_edges(text)
    assert 's_1_wait["1. wait 1h"]' in text
    assert "s_2_split -- email 60% -->" in text and "s_2_split -- sms 20% -->" in text
    assert "s_2_split -- holdout 20% --> s_2_split_holdout" in text
    assert 's_3_wait_for_on_timeout_1_exit>"exit: not paid"]' in text
    assert "s_3_wait_for -- received --> s_4_branch" in text
    assert "s_4_branch -- yes --> s_4_branch_then_1_send" in text
    assert "s_4_branch -- no --> s_5_update_customer" in text
    assert "#quot;friend#quot;" in text  # quotes cannot break a label
    assert '"5. update_customer add_tags: drawn"' in text
    assert "exit_on_0 -. any time .-> done" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_shipped_journey_draws(path: Path) -> None:
    text = mermaid(compile_journey(path.read_text(encoding="utf-8"), str(path)))
    assert text.startswith("flowchart TD\n")
    _check_edges(text)


def test_tropa_graph_prints_the_flowchart() -> None:
    path = Path(__file__).parents[1] / "examples" / "abandoned-cart.yaml"
    done = subprocess.run([TROPA, "graph", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == mermaid(compile_journey(path.read_text(encoding="utf-8"), str(path)))


def test_time_triggers_are_drawn_in_words() -> None:
    text = mermaid(compile_journey(
        "journey: bday\ntrigger: {date: customer.birthday, offset: -1d, at: \"10:00\"}\n"
        "steps:\n  - send: {channel: sms, text: Hi}\n"))
    assert 'start(["bday: customer.birthday -1d at 10:00 local, every year (re-entry' in text


def test_a_broken_journey_is_refused_with_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("journey: bad\ntrigger: {event: x}\nsteps:\n  - wiat: 1h\n")
    done = subprocess.run([TROPA, "graph", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and f"{bad}:4:5: error" in done.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_readme_shows_every_shipped_journey_as_tropa_graph_draws_it(path: Path) -> None:
    readme = Path(__file__).parents[1].joinpath("README.md").read_text(encoding="utf-8")
    graph = mermaid(compile_journey(path.read_text(encoding="utf-8"), str(path)))
    section = readme.split(f"\n### {path.stem}\n", 1)
    assert len(section) == 2, f"README has no section for {path.stem}"
    assert f"```mermaid\n{graph.rstrip()}\n```" in section[1].split("\n### ", 1)[0]

"""Plans: JSON-serialisable, stable step ids, the content hash as version."""

from __future__ import annotations

import json

from tropa.dsl.compiler import compile_journey
from tropa.dsl.plan import Plan

SOURCE = """
journey: welcome
trigger: {event: customer.signed_up}
steps:
  - send: {channel: sms, text: "Hello {{ customer.first_name }}"}
  - branch:
      if: customer.email_verified
      then:
        - send: {channel: email, subject: Hi, text: Welcome}
      else:
        - wait: 1d
  - split:
      arms:
        - {name: a, weight: 1, steps: [{wait: 1h}]}
        - {name: b, weight: 1}
      holdout: 1
"""


def test_plan_has_stable_ids_and_round_trips_as_json() -> None:
    plan = compile_journey(SOURCE)
    assert [s.id for s in plan.steps] == ["1-send", "2-branch", "3-split"]
    assert plan.steps[1].children["then"][0].id == "2-branch/then/1-send"
    assert plan.steps[2].children["arms[0].steps"][0].id == "3-split/arms[0].steps/1-wait"
    again = Plan.model_validate(json.loads(plan.model_dump_json()))
    assert again == plan


def test_version_is_a_content_hash() -> None:
    first = compile_journey(SOURCE)
    assert compile_journey(SOURCE + "\n# a comment changes nothing\n").version == first.version
    changed = compile_journey(SOURCE.replace("wait: 1d", "wait: 2d"))
    assert changed.version != first.version
    assert len(first.version) == 12


def test_shorthands_compile_to_full_parameters() -> None:
    plan = compile_journey("journey: j\ntrigger: {event: e}\nsteps:\n  - wait: 90m\n"
                           "  - wait_until: '10:00'\n  - exit: done\n")
    assert [s.params for s in plan.steps] == [
        {"duration": "90m"}, {"at": "10:00", "timestamp": None}, {"reason": "done"}]

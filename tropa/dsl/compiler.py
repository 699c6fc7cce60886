"""From YAML text to a Plan: load with positions, validate, compile, hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tropa.dsl.plan import DateTrigger, ExitRule, InactivityTrigger, Plan, PlanStep, Trigger
from tropa.dsl.positions import load_with_positions
from tropa.dsl.reads import Reads
from tropa.dsl.spec import JourneySpec
from tropa.dsl.time_triggers import offset_days, whole_days
from tropa.dsl.validate import CheckedJourney, CheckedStep, Validator
from tropa.errors import JourneyInvalid, Problem
from tropa.steps.builtin import registry
from tropa.steps.registry import Registry

MAX_PROBLEMS = 100  # reported per file; the rest are counted


def compile_journey(text: str, source: str = "<journey>", reg: Registry | None = None) -> Plan:
    """Compile journey YAML to a Plan, or raise JourneyInvalid with the problems found (the
    first MAX_PROBLEMS by line, then a count of the rest)."""
    raw, smap, problems = load_with_positions(text, source)
    if problems:
        raise JourneyInvalid(_first(problems))
    validator = Validator(reg or registry(), smap)
    checked = validator.journey(raw)
    if checked is None:
        raise JourneyInvalid(_first(validator.problems))
    return build_plan(checked)


def _first(problems: list[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS problems, then one that counts the rest."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = problems[MAX_PROBLEMS]
    return [*problems[:MAX_PROBLEMS], Problem(
        f"and {len(problems) - MAX_PROBLEMS} more problems from here on",
        source=rest.source, line=rest.line, column=rest.column, line_text=rest.line_text,
        hint="fix the problems above first")]


def build_plan(checked: CheckedJourney) -> Plan:
    """A Plan with stable step ids and the content hash as its version."""
    spec = checked.spec
    plan = Plan(
        journey=spec.journey,
        version="",
        description=spec.description,
        category=spec.settings.category,
        re_entry=spec.re_entry,
        trigger=_trigger(spec),
        exit_on=[ExitRule(event=e.event, where=e.where, key=e.key) for e in spec.exit_on],
        steps=_steps(checked.steps, ""),
    )
    plan.event_fields, plan.step_outputs = reads_of(checked).sorted()
    plan.version = content_hash(plan)
    return plan


def reads_of(checked: CheckedJourney) -> Reads:
    """The event fields and step outputs the journey's templates and conditions read (the
    trigger's are read by the router from the whole event, before a run exists)."""
    reads = Reads()
    for rule in checked.spec.exit_on:
        if rule.where:
            reads.add_source(rule.where, condition=True)
    stack = list(checked.steps)
    while stack:
        step = stack.pop()
        reads.add_params(step.params)
        for children in step.children.values():
            stack.extend(children)
    return reads


def _trigger(spec: JourneySpec) -> Trigger:
    trigger = spec.trigger
    late = trigger.late or "send"
    if trigger.date is not None:
        return Trigger(event=f"date.{spec.journey}", where=trigger.where, kind="date",
                       date=DateTrigger(path=trigger.date,
                                        offset_days=offset_days(trigger.offset or "0d"),
                                        at=trigger.at or "10:00", every=trigger.every or "year",
                                        late=late))
    if trigger.inactivity is not None:
        spell = trigger.inactivity
        return Trigger(event=f"inactivity.{spec.journey}", where=trigger.where,
                       kind="inactivity",
                       inactivity=InactivityTrigger(event=spell.event,
                                                    days=whole_days(spell.for_), at=spell.at,
                                                    late=late))
    return Trigger(event=trigger.event_type, where=trigger.where, key=trigger.key)


def content_hash(plan: Plan) -> str:
    """The version: a hash of the Plan without its version field."""
    body = plan.model_dump(mode="json", exclude={"version"})
    # Event triggers hash as they did before date and inactivity triggers existed.
    if plan.trigger.kind == "event":
        for name in ("kind", "date", "inactivity"):
            body["trigger"].pop(name, None)
    # Exit rules without a key of their own hash as they did before listener keys.
    for rule in body["exit_on"]:
        if rule.get("key") is None:
            rule.pop("key", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _steps(steps: list[CheckedStep], prefix: str) -> list[PlanStep]:
    return [_step(step, f"{prefix}{i + 1}-{step.type.name}") for i, step in enumerate(steps)]


def _step(step: CheckedStep, step_id: str) -> PlanStep:
    params: dict[str, Any] = step.params.model_dump(mode="json", by_alias=True)
    listen_key = step.type.listen_key
    if listen_key is not None and params.get(listen_key) is None:
        # Without a key of its own the step compiles (and hashes) as before listener keys.
        params.pop(listen_key, None)
    for spec in step.type.nested:
        if "[]." in spec:
            outer, inner = spec.split("[].", 1)
            for element in params.get(outer) or []:
                element.pop(inner, None)
        else:
            params.pop(spec, None)
    return PlanStep(
        id=step_id,
        type=step.type.name,
        params=params,
        children={key: _steps(children, f"{step_id}/{key}/")
                  for key, children in step.children.items()},
        call=step.type.call,
    )

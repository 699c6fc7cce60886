"""A journey as a Mermaid flowchart: steps, waits with their durations, branches, split arms
with their weights, exits and `exit_on` rules, for the README, GitHub and editors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tropa.dsl.plan import Plan, PlanStep

_LABEL_MAX = 80
_ARM = re.compile(r"^arms\[(\d+)\]\.steps$")


def mermaid(plan: Plan) -> str:
    """The Plan as `flowchart TD` text; node ids are derived from the stable step ids."""
    graph = _Graph(plan)
    start = graph.node("start", _trigger_label(plan), shape="stadium")
    end = "done"
    ends = graph.chain(plan.steps, [(start, "")])
    graph.node(end, "end", shape="circle")
    graph.join(ends, end)
    for i, rule in enumerate(plan.exit_on):
        label = f"exit_on {rule.event}" + (f" if {rule.where}" if rule.where else "") + (
            _keyed(plan, rule.key))
        rid = graph.node(f"exit_on_{i}", label, shape="hexagon")
        graph.lines.append(f"  {rid} -. any time .-> {end}")
    return "\n".join(["flowchart TD", *graph.lines]) + "\n"


class _Graph:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.lines: list[str] = []

    def node(self, node_id: str, label: str, *, shape: str = "box") -> str:
        text = _escape(label)
        opening, closing = {"box": ("[", "]"), "stadium": ("([", "])"),
                            "diamond": ("{", "}"), "circle": ("((", "))"),
                            "hexagon": ("{{", "}}"), "flag": (">", "]")}[shape]
        self.lines.append(f'  {node_id}{opening}"{text}"{closing}')
        return node_id

    def join(self, tails: list[tuple[str, str]], target: str) -> None:
        for tail, label in tails:
            arrow = f"-- {_escape(label)} -->" if label else "-->"
            self.lines.append(f"  {tail} {arrow} {target}")

    def chain(self, steps: list[PlanStep], tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Draw `steps` after `tails`; the open ends (node, edge label) after the last step."""
        for step in steps:
            tails = _DRAW.get(step.type, _plain)(self, step, tails)
        return tails


def _plain(graph: _Graph, step: PlanStep, tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
    node = graph.node(_id(step), f"{_number(step)} {_summary(step)}")
    graph.join(tails, node)
    return [(node, "")]


def _exit(graph: _Graph, step: PlanStep, tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
    node = graph.node(_id(step), f"exit: {step.params.get('reason', '')}", shape="flag")
    graph.join(tails, node)
    return []  # nothing follows an exit


def _branch(graph: _Graph, step: PlanStep,
            tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
    node = graph.node(_id(step), f"{_number(step)} if {step.params.get('if', '')}",
                      shape="diamond")
    graph.join(tails, node)
    ends = graph.chain(step.children.get("then", []), [(node, "yes")])
    return ends + graph.chain(step.children.get("else", []), [(node, "no")])


def _split(graph: _Graph, step: PlanStep, tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
    node = graph.node(_id(step), f"{_number(step)} split", shape="diamond")
    graph.join(tails, node)
    arms: list[dict[str, Any]] = step.params.get("arms", [])
    total = sum(int(a.get("weight", 0)) for a in arms) + int(step.params.get("holdout", 0))
    ends: list[tuple[str, str]] = []
    for key, children in step.children.items():
        match = _ARM.match(key)
        arm = arms[int(match.group(1))] if match else {}
        share = f"{arm.get('name', key)} {_percent(int(arm.get('weight', 0)), total)}"
        ends += graph.chain(children, [(node, share)])
    for i, arm in enumerate(arms):  # arms without steps go straight on
        if f"arms[{i}].steps" not in step.children:
            ends.append((node, f"{arm.get('name')} {_percent(int(arm.get('weight', 0)), total)}"))
    holdout = int(step.params.get("holdout", 0))
    if holdout:
        hid = graph.node(f"{_id(step)}_holdout", "holdout: receives nothing", shape="flag")
        graph.lines.append(f"  {node} -- holdout {_percent(holdout, total)} --> {hid}")
    return ends


def _wait_for(graph: _Graph, step: PlanStep,
              tails: list[tuple[str, str]]) -> list[tuple[str, str]]:
    p = step.params
    where = f" if {p['where']}" if p.get("where") else ""
    node = graph.node(_id(step), f"{_number(step)} wait for {p.get('event')}{where}"
                      f"{_keyed(graph.plan, p.get('key'))} up to {p.get('timeout')}",
                      shape="diamond")
    graph.join(tails, node)
    timeout = step.children.get("on_timeout", [])
    return [(node, "received"), *graph.chain(timeout, [(node, "timeout")])]


_DRAW: dict[str, Callable[[_Graph, PlanStep, list[tuple[str, str]]],
                          list[tuple[str, str]]]] = {
    "exit": _exit, "branch": _branch, "split": _split, "wait_for": _wait_for}


def _summary(step: PlanStep) -> str:
    p = step.params
    if step.type == "wait":
        return f"wait {p.get('duration', '')}"
    if step.type == "wait_until":
        return f"wait until {p.get('at') or p.get('timestamp') or ''}"
    if step.type == "send":
        what = p.get("template") or p.get("subject") or p.get("text") or ""
        fallback = f" (fallback {', '.join(p['fallback'])})" if p.get("fallback") else ""
        return f"send {p.get('channel', '')}{fallback}: {what}"
    details = ", ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in p.items()
                        if v not in (None, "", [], {}) and not isinstance(v, dict))
    return f"{step.type} {details}".strip()


def _keyed(plan: Plan, key: str | None) -> str:
    """How a listener of a keyed journey finds its run: by its own key or the trigger's."""
    if plan.trigger.key is None:
        return ""
    return f" (by key {key or plan.trigger.key})"


def _trigger_label(plan: Plan) -> str:
    trigger = plan.trigger
    if trigger.date is not None:
        day = trigger.date
        offset = f" {day.offset_days:+d}d" if day.offset_days else ""
        text = f"{plan.journey}: {day.path}{offset} at {day.at} local, every {day.every}"
    elif trigger.inactivity is not None:
        idle = trigger.inactivity
        text = f"{plan.journey}: {idle.days}d without {idle.event}, at {idle.at} local"
    else:
        text = f"{plan.journey}: on {trigger.event}"
    if trigger.where:
        text += f" if {trigger.where}"
    return text + f" (re-entry: {plan.re_entry})"


def _number(step: PlanStep) -> str:
    # `4-branch/then/1-send` is step 4.1: the numbers of the step and of its parents.
    numbers = [part.split("-", 1)[0] for part in step.id.split("/") if part[:1].isdigit()]
    return ".".join(numbers) + "."


def _id(step: PlanStep) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9]", "_", step.id)


def _percent(weight: int, total: int) -> str:
    return f"{weight * 100 // total}%" if total else ""


def _escape(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _LABEL_MAX:
        text = text[:_LABEL_MAX - 1] + "…"
    # Mermaid labels are quoted; quotes and markup characters go in as entities.
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))

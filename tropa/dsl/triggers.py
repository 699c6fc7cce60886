"""A trigger on one event: its `where` condition and its `key`, and the bounds on the key.

A run's workflow id is `journey/<journey>/<customer>[/<key>][/<event id>]`. Temporal refuses
ids over 1,000 bytes and the store keeps them (with step ids appended) in 400-character
columns, so the rendered key has at most `MAX_KEY` characters and the whole id at most
`MAX_RUN_ID`; an event past either skips the trigger with the reason, it never fails.
"""

from __future__ import annotations

import re
from typing import Any

from tropa.dsl.expressions import ExpressionError, evaluate, render
from tropa.dsl.plan import Trigger

MAX_KEY = 100
MAX_RUN_ID = 250
_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def literal_key_problem(key: str) -> str | None:
    """A validation problem when the key's literal text alone is over MAX_KEY."""
    literal = _TAGS.sub("", key)
    if len(literal) > MAX_KEY:
        return (f"the key's text is {len(literal)} characters; a key renders to at most "
                f"{MAX_KEY}, so keep its literal text short")
    return None


def match(trigger: Trigger, context: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the trigger's `where` holds for this event, and the rendered key.

    Raises ExpressionError when either cannot be evaluated or the key is too long. Pure
    CPU work bounded by the template sandbox: callers on an event loop run it in a thread.
    """
    if trigger.where and not evaluate(trigger.where, context):
        return False, None
    if not trigger.key:
        return True, None
    return True, render_key(trigger.key, context, "the trigger key")


def render_key(template: str, context: dict[str, Any], what: str) -> str:
    """A key template rendered on this event, stripped and at most MAX_KEY characters.

    Raises ExpressionError when it cannot be rendered or is too long (`what` names the key
    in the message). Pure CPU work bounded by the template sandbox, like `match`."""
    key = render(template, context).strip()
    if len(key) > MAX_KEY:
        raise ExpressionError(f"{what} renders to {len(key)} characters; at most {MAX_KEY}")
    return key


def run_id_problem(workflow_id: str) -> str | None:
    """Why a run id cannot be used, or None."""
    if len(workflow_id) > MAX_RUN_ID:
        return (f"the run id would be {len(workflow_id)} characters; at most {MAX_RUN_ID} "
                "(use shorter customer ids, event ids or keys)")
    return None

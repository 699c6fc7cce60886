"""Happenings as a marketer reads them: one line each, in the customer's local time."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from tropa.simulate.happenings import Happening

# Steps whose effect has a line of its own (the message, the ledger operation): their step
# line would say the same again.
SHOWN_BY_EFFECT = {"send", "accrue_bonus", "write_off_bonus", "issue_coupon", "create_task"}


def json_lines(happenings: list[Happening]) -> str:
    """One JSON object a line, in time order."""
    return "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in happenings)


def local(at: str, zone: ZoneInfo) -> str:
    """`2027-02-27 10:00 MSK`: the moment in the customer's zone, to the minute."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(zone)
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"


def line(happening: Happening, zone: ZoneInfo) -> str | None:
    """One happening as text; None for a step whose effect has its own line."""
    kind = happening["kind"]
    when = local(happening["at"], zone)
    if kind == "run_started":
        return f"{when}  run started: {happening['run']} ({happening['journey']})"
    if kind == "run_ended":
        return f"{when}  run {happening['state']}: {happening['reason']}"
    if kind == "message":
        subject = f" [{happening['subject']}]" if happening.get("subject") else ""
        why = f" ({happening['reason']})" if happening.get("reason") else ""
        return (f"{when}  {happening['channel']} {happening['status']}{why}:{subject} "
                f"{happening['text']}")
    if kind == "loyalty":
        return _loyalty(happening, when, zone)
    if kind == "task":
        due = f" (due {local(happening['due_at'], zone)})" if happening.get("due_at") else ""
        return f"{when}  task for {happening['assignee']}{due}: {happening['text']}"
    if happening["type"] in SHOWN_BY_EFFECT and happening["outcome"] not in ("failed",
                                                                            "running"):
        return None
    detail = f": {happening['detail']}" if happening.get("detail") else ""
    if happening["type"] in ("wait", "wait_until", "wait_for") and happening.get("finished_at"):
        detail += f" (until {local(happening['finished_at'], zone)})"
    return f"{when}  step {happening['step']} ({happening['type']}) {happening['outcome']}{detail}"


def _loyalty(happening: Happening, when: str, zone: ZoneInfo) -> str:
    operation = happening["operation"]
    if operation == "issue_coupon":
        until = f", valid until {local(happening['expires_at'], zone)}" \
            if happening.get("expires_at") else ""
        return f"{when}  coupon {happening['code']} issued ({happening['series']}){until}"
    account = happening.get("account", "bonus")
    return (f"{when}  {operation} {happening['amount']} {account} points; balance "
            f"{happening['balance']}")


def text(happenings: list[Happening], zone: str, customer_id: str) -> str:
    """The readable timeline, headed by whose it is and in which zone."""
    tz = ZoneInfo(zone)
    lines = [f"Timeline of customer {customer_id} ({zone})"]
    lines += [shown for h in happenings if (shown := line(h, tz)) is not None]
    if len(lines) == 1:
        lines.append("nothing happens in this span")
    return "\n".join(lines) + "\n"

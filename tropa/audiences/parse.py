"""Reading an audience filter: YAML or JSON to a condition tree, every problem with its place.

The filter stands alone (`parse_audience`) or inside a journey's `trigger.audience:`; either
way problems come from the same SourceMap machinery as the journey language, so they carry
line, column, the offending line with a caret, and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime
from typing import Any

from tropa.audiences.conditions import (
    IDENTIFIERS,
    PROFILE_FIELDS,
    All,
    AnyOf,
    Audience,
    Condition,
    Consent,
    FieldCond,
    FieldKind,
    Has,
    LastPurchase,
    Loyalty,
    Not,
    Op,
    Purchases,
    Segment,
    Tag,
)
from tropa.dsl.durations import DURATION_FORM, parse_duration
from tropa.dsl.positions import Path, SourceMap, load_with_positions
from tropa.errors import AudienceInvalid, Problem
from tropa.segments.config import SEGMENTS

KINDS = ("all", "any", "not", "has", "field", "tag", "consent", "segment", "loyalty",
         "purchases", "last_purchase", "utm", "referral", "registered")
COMPARE = ("eq", "ne", "lt", "lte", "gt", "gte")
RELATIVE = ("older_than", "within")
DATE_PARTS = ("month", "day")
OPS_BY_KIND: dict[FieldKind, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "contains", "exists"),
    "bool": ("eq", "ne", "exists"),
    "date": (*COMPARE, "in", "exists", *DATE_PARTS, *RELATIVE),
    "datetime": ("lt", "lte", "gt", "gte", "exists", *DATE_PARTS, *RELATIVE),
    "json": (*COMPARE, "in", "contains", "exists"),
}
UTM_KEYS = ("source", "medium", "campaign", "content", "term")
CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DEPTH = 16
MAX_CONDITIONS = 500
MAX_LIST = 1000
PROGRAMME = re.compile(r"^[\w.-]{1,64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def is_date_key(key: str) -> bool:
    """Attribute keys that hold dates (`birthday`, `date`, `*_date`) or date-times (`*_at`),
    as customer_dates indexes them."""
    return key in ("birthday", "date") or key.endswith(("_date", "_at"))


def parse_audience(source: str | dict[str, Any], *, name: str = "<audience>") -> Audience:
    """A filter from YAML text or a mapping; raises AudienceInvalid with every problem."""
    if isinstance(source, str):
        raw, smap, problems = load_with_positions(source, name)
        if problems:
            raise AudienceInvalid(problems)
    else:
        raw, smap = source, SourceMap(source=name, text="")
    reader = FilterReader(smap)
    audience = reader.audience(raw, ())
    if audience is None:
        raise AudienceInvalid(reader.problems)
    return audience


class FilterReader:
    """Reads one filter at `base` of a document, collecting problems instead of stopping."""

    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.problems: list[Problem] = []
        self.count = 0

    def audience(self, raw: Any, base: Path) -> Audience | None:
        """The Audience of the filter at `base`, or None with `problems` filled."""
        before = len(self.problems)
        root = self.condition(raw, base, 0)
        if root is None or len(self.problems) > before:
            return None
        return Audience(spec=normalise(raw), root=root)

    # -- helpers ---------------------------------------------------------------------------

    def _fail(self, path: Path, message: str, *, hint: str | None = None,
              at_key: bool = False) -> None:
        self.problems.append(self.smap.problem(path, message, hint=hint, at_key=at_key))

    def _unknown(self, path: Path, what: str, name: str, known: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        guess = f"did you mean `{close[0]}`? " if close else ""
        self._fail(path, f"unknown {what} `{name}`", at_key=True,
                   hint=f"{guess}known {what}s here: {', '.join(known)}")

    def _mapping(self, raw: Any, path: Path, example: str) -> dict[str, Any] | None:
        if isinstance(raw, dict):
            return raw
        self._fail(path, "expected a mapping here", hint=f"write for example `{example}`")
        return None

    def _keys(self, raw: dict[str, Any], path: Path, allowed: tuple[str, ...]) -> bool:
        ok = True
        for key in raw:
            if key not in allowed:
                self._unknown((*path, key), "field", str(key), allowed)
                ok = False
        return ok

    def _name(self, raw: Any, path: Path, what: str, pattern: re.Pattern[str]) -> str | None:
        if isinstance(raw, str) and pattern.match(raw):
            return raw
        self._fail(path, f"`{_show(raw)}` is not a {what}",
                   hint=f"write a {what} matching {pattern.pattern}")
        return None

    def _names(self, raw: Any, path: Path, what: str,
               known: tuple[str, ...] | None, pattern: re.Pattern[str] | None = None,
               ) -> tuple[str, ...] | None:
        items = raw if isinstance(raw, list) else [raw]
        if not items or len(items) > MAX_LIST:
            self._fail(path, f"give one {what} or a list of 1 to {MAX_LIST}")
            return None
        out: list[str] = []
        for index, item in enumerate(items):
            where = (*path, index) if isinstance(raw, list) else path
            if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
                self._fail(where, f"`{_show(item)}` is not a {what}",
                           hint=f"known {what}s: {', '.join(known)}" if known else None)
                continue
            if known is not None and item not in known:
                close = difflib.get_close_matches(item, known, n=1, cutoff=0.5)
                guess = f"did you mean `{close[0]}`? " if close else ""
                self._fail(where, f"unknown {what} `{item}`",
                           hint=f"{guess}known {what}s: {', '.join(known)}")
                continue
            out.append(item)
        return tuple(out) if len(out) == len(items) else None

    def _duration(self, raw: Any, path: Path) -> int | None:
        try:
            if not isinstance(raw, str):
                raise ValueError(f"expected a duration, {DURATION_FORM}")
            return int(parse_duration(raw).total_seconds())
        except ValueError as exc:
            self._fail(path, str(exc), hint="e.g. `older_than: 30d` or `within: 12w`")
            return None

    def _numeric_ops(self, raw: Any, path: Path, example: str) -> tuple[Op, ...] | None:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return (("eq", raw),)
        body = self._mapping(raw, path, example)
        if body is None:
            return None
        if not body:
            self._fail(path, "give at least one operator", hint=f"e.g. `{example}`")
            return None
        ops: list[Op] = []
        for key, value in body.items():
            if key not in COMPARE:
                self._unknown((*path, key), "operator", str(key), COMPARE)
            elif isinstance(value, bool) or not isinstance(value, int):
                self._fail((*path, key), f"`{key}` takes a whole number here, not "
                           f"`{_show(value)}`", hint="money is in minor units, e.g. 150000 "
                           "for 1,500.00")
            else:
                ops.append((key, value))
        return tuple(ops) if len(ops) == len(body) else None

    # -- conditions ------------------------------------------------------------------------

    def condition(self, raw: Any, path: Path, depth: int) -> Condition | None:
        """One condition (a mapping with one kind key, or `field:` with its operators)."""
        self.count += 1
        if self.count > MAX_CONDITIONS:
            if self.count == MAX_CONDITIONS + 1:
                self._fail(path, f"the filter has more than {MAX_CONDITIONS} conditions",
                           hint="save parts of it, or use `in:` lists")
            return None
        if depth > MAX_DEPTH:
            self._fail(path, f"the filter nests more than {MAX_DEPTH} levels deep",
                       hint="flatten `all:` inside `all:` and `any:` inside `any:`")
            return None
        if not isinstance(raw, dict) or not raw:
            self._fail(path, "a condition is a mapping such as `tag: vip` or "
                       "`{field: attributes.city, eq: Moscow}`",
                       hint=f"conditions: {', '.join(KINDS)}")
            return None
        if "saved" in raw:
            self._fail((*path, "saved"), "`saved:` names a whole saved audience and cannot "
                       "be nested in a filter", at_key=True,
                       hint="give `{saved: <name>}` on its own, or copy the saved filter here")
            return None
        kinds = [k for k in raw if k in KINDS]
        if "field" in raw:
            return self._field(raw, path)
        if not kinds:
            key = str(next(iter(raw)))
            self._unknown((*path, key), "condition", key, KINDS)
            return None
        if len(raw) > 1:
            extra = next(k for k in raw if k != kinds[0])
            if extra in KINDS:
                self._fail((*path, extra), f"`{kinds[0]}:` and `{extra}:` are two conditions "
                           "in one mapping", at_key=True,
                           hint="put each in its own list item under `all:` or `any:`")
            else:
                self._unknown((*path, str(extra)), "condition", str(extra), KINDS)
            return None
        kind = kinds[0]
        value = raw[kind]
        where = (*path, kind)
        reader = getattr(self, f"_{kind}")
        result: Condition | None = reader(value, where, depth)
        return result

    def _all(self, value: Any, path: Path, depth: int) -> Condition | None:
        items = self._list_of_conditions(value, path, depth, "all")
        return None if items is None else All(items)

    def _any(self, value: Any, path: Path, depth: int) -> Condition | None:
        items = self._list_of_conditions(value, path, depth, "any")
        return None if items is None else AnyOf(items)

    def _list_of_conditions(self, value: Any, path: Path, depth: int,
                            kind: str) -> tuple[Condition, ...] | None:
        if not isinstance(value, list):
            self._fail(path, f"`{kind}:` takes a list of conditions",
                       hint=f"write `{kind}: [{{tag: vip}}, {{segment: loyal}}]`")
            return None
        items = [self.condition(item, (*path, i), depth + 1) for i, item in enumerate(value)]
        checked = [c for c in items if c is not None]
        return tuple(checked) if len(checked) == len(items) else None

    def _not(self, value: Any, path: Path, depth: int) -> Condition | None:
        item = self.condition(value, path, depth + 1)
        return None if item is None else Not(item)

    def _has(self, value: Any, path: Path, _depth: int) -> Condition | None:
        names = self._names(value, path, "identifier", IDENTIFIERS)
        if names is None:
            return None
        return Has(names[0]) if len(names) == 1 else All(tuple(Has(n) for n in names))

    def _tag(self, value: Any, path: Path, _depth: int) -> Condition | None:
        if isinstance(value, str) and 0 < len(value) <= 100:
            return Tag(value)
        self._fail(path, f"`{_show(value)}` is not a tag name", hint="write `tag: vip`; for "
                   "several tags use `all:` or `any:` with one `tag:` each")
        return None

    def _segment(self, value: Any, path: Path, _depth: int) -> Condition | None:
        names = self._names(value, path, "segment", tuple(SEGMENTS))
        return None if names is None else Segment(names)

    def _consent(self, value: Any, path: Path, _depth: int) -> Condition | None:
        if isinstance(value, str):
            value = {"channel": value}
        body = self._mapping(value, path, "consent: {category: marketing, channel: email}")
        if body is None or not self._keys(body, path, ("category", "channel")):
            return None
        category = body.get("category", "marketing")
        if category not in ("marketing", "service"):
            self._fail((*path, "category"), f"`{_show(category)}` is not a category",
                       hint="write marketing or service")
            return None
        if "channel" not in body:
            self._fail(path, "missing required field `channel`", hint="add `channel: email` "
                       "(or sms, push, whatsapp, telegram, ...)")
            return None
        channel = self._name(body["channel"], (*path, "channel"), "channel name", CHANNEL)
        return None if channel is None else Consent(category, channel)

    def _loyalty(self, value: Any, path: Path, _depth: int) -> Condition | None:
        body = self._mapping(value, path, "loyalty: {balance: {gte: 500}}")
        if body is None or not self._keys(body, path, ("programme", "balance", "level")):
            return None
        programme = self._name(body.get("programme", "default"), (*path, "programme"),
                               "programme name", PROGRAMME)
        balance: tuple[Op, ...] | None = ()
        if "balance" in body:
            balance = self._numeric_ops(body["balance"], (*path, "balance"),
                                        "balance: {gte: 500}")
        levels = None
        if "level" in body:
            levels = self._names(body["level"], (*path, "level"), "level name", None)
            if levels is None:
                return None
        if "balance" not in body and "level" not in body:
            self._fail(path, "give `balance:` or `level:`",
                       hint="e.g. `loyalty: {balance: {gte: 500}}` or `loyalty: {level: Gold}`")
            return None
        if programme is None or balance is None:
            return None
        return Loyalty(programme, balance, levels)

    def _purchases(self, value: Any, path: Path, _depth: int) -> Condition | None:
        example = "purchases: {within: 90d, count: {gte: 2}}"
        body = self._mapping(value, path, example)
        if body is None or not self._keys(body, path, ("within", "currency", "count", "sum")):
            return None
        within = None
        if "within" in body:
            within = self._duration(body["within"], (*path, "within"))
            if within is None:
                return None
        currency = None
        if "currency" in body:
            currency = self._name(body["currency"], (*path, "currency"),
                                  "currency code (ISO 4217, e.g. RUB)", CURRENCY)
            if currency is None:
                return None
        if "count" not in body and "sum" not in body:
            self._fail(path, "give `count:` or `sum:`", hint=f"e.g. `{example}`")
            return None
        count = self._numeric_ops(body.get("count", {"gte": 0}), (*path, "count"),
                                  "count: {gte: 2}")
        total = self._numeric_ops(body.get("sum", {"gte": 0}), (*path, "sum"),
                                  "sum: {gte: 500000}")
        if count is None or total is None:
            return None
        return Purchases(within, currency,
                         count if "count" in body else (), total if "sum" in body else ())

    def _last_purchase(self, value: Any, path: Path, _depth: int) -> Condition | None:
        body = self._mapping(value, path, "last_purchase: {older_than: 90d}")
        if body is None or not self._keys(body, path, ("within", "older_than", "exists")):
            return None
        if not body:
            self._fail(path, "give `within:`, `older_than:` or `exists:`",
                       hint="e.g. `last_purchase: {older_than: 90d}`")
            return None
        ops: list[Op] = []
        for key, item in body.items():
            if key == "exists":
                if isinstance(item, bool):
                    ops.append((key, item))
                else:
                    self._fail((*path, key), "`exists` takes true or false")
            else:
                seconds = self._duration(item, (*path, key))
                if seconds is not None:
                    ops.append((key, seconds))
        return LastPurchase(tuple(ops)) if len(ops) == len(body) else None

    def _utm(self, value: Any, path: Path, _depth: int) -> Condition | None:
        body = self._mapping(value, path, "utm: {source: email, campaign: spring}")
        if body is None or not self._keys(body, path, UTM_KEYS):
            return None
        if not body:
            self._fail(path, "give at least one of " + ", ".join(UTM_KEYS))
            return None
        items = [self._field({"field": f"attributes.utm_{key}", "eq": item}, (*path, key),
                             spelled=key)
                 for key, item in body.items()]
        checked = [c for c in items if c is not None]
        if len(checked) != len(items):
            return None
        return checked[0] if len(checked) == 1 else All(tuple(checked))

    def _referral(self, value: Any, path: Path, _depth: int) -> Condition | None:
        ops = value if isinstance(value, dict) else {"eq": value}
        return self._field({"field": "attributes.referral", **ops}, path, spelled="referral")

    def _registered(self, value: Any, path: Path, _depth: int) -> Condition | None:
        body = self._mapping(value, path, "registered: {older_than: 30d}")
        if body is None:
            return None
        return self._field({"field": "created_at", **body}, path, spelled="registered")

    # -- fields ----------------------------------------------------------------------------

    def _field(self, raw: dict[str, Any], path: Path,
               spelled: str | None = None) -> Condition | None:
        name = raw.get("field")
        # Sugar (utm, referral, registered) reports at its own place, not at a `field:` key.
        field_path = path if spelled else (*path, "field")
        op_path: Path = path if spelled == "utm" else ()
        if not isinstance(name, str):
            self._fail(field_path, "`field:` names a profile field or an attribute path",
                       hint="e.g. `field: birthday` or `field: attributes.city`")
            return None
        target = self._target(name, field_path)
        if target is None:
            return None
        kind, keys, date_path = target
        allowed = OPS_BY_KIND[kind]
        if kind == "json" and date_path is not None:  # read through customer_dates
            allowed = (*COMPARE, "in", "exists", *DATE_PARTS, *RELATIVE)
        if date_path is None:
            allowed = tuple(op for op in allowed if op not in DATE_PARTS)
        ops_raw = {k: v for k, v in raw.items() if k != "field"}
        if not ops_raw:
            self._fail(field_path, f"`{name}` needs an operator",
                       hint=f"operators for it: {', '.join(allowed)}")
            return None
        ops: list[Op] = []
        for op, value in ops_raw.items():
            where = op_path or (*path, op)
            if op not in allowed:
                known = (*COMPARE, "in", "contains", "exists", *DATE_PARTS, *RELATIVE)
                if op in known:
                    dates = (" (dates are birthday, created_at, registered_at and attributes "
                             "named birthday, date, *_date or *_at)"
                             if op in (*DATE_PARTS, *RELATIVE) else "")
                    self._fail(where, f"`{op}` does not apply to `{name}`", at_key=True,
                               hint=f"operators for it: {', '.join(allowed)}{dates}")
                else:
                    self._unknown(where, "operator", str(op), allowed)
                continue
            checked = self._operand(op, value, kind, date_path, name, where)
            if checked is not _BAD:
                ops.append((op, checked))
        if len(ops) != len(ops_raw):
            return None
        return FieldCond(path=name, kind=kind, keys=keys, date_path=date_path, ops=tuple(ops))

    def _target(self, name: str, path: Path) -> tuple[FieldKind, tuple[str, ...],
                                                      str | None] | None:
        if name in PROFILE_FIELDS:
            kind = PROFILE_FIELDS[name]
            dated = kind in ("date", "datetime") and name != "updated_at"
            return kind, (), f"customer.{name}" if dated else None
        head, _, rest = name.partition(".")
        if head != "attributes" or not rest:
            known = (*PROFILE_FIELDS, "attributes.<name>")
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            guess = f"did you mean `{close[0]}`? " if close else ""
            self._fail(path, f"unknown field `{name}`",
                       hint=f"{guess}fields: {', '.join(known)}")
            return None
        if "[]" in rest:
            outer, _, inner = rest.partition("[].")
            if not (KEY.match(outer) and KEY.match(inner) and is_date_key(inner)):
                self._fail(path, f"`{name}` is not a list date path",
                           hint="a list path reads a date in each element, e.g. "
                           "attributes.children[].birth_date (keys birthday, *_date, *_at)")
                return None
            return "json", (), f"customer.attributes.{outer}[].{inner}"
        keys = tuple(rest.split("."))
        bad = next((k for k in keys if not KEY.match(k)), None)
        if bad is not None:
            self._fail(path, f"`{bad}` is not an attribute name",
                       hint="attribute names are letters, digits and _, starting with a letter")
            return None
        dated = len(keys) == 1 and is_date_key(keys[0])
        return "json", keys, f"customer.attributes.{keys[0]}" if dated else None

    def _operand(self, op: str, value: Any, kind: FieldKind, date_path: str | None,
                 name: str, path: Path) -> Any:
        if op == "exists":
            if isinstance(value, bool):
                return value
            self._fail(path, "`exists` takes true or false")
            return _BAD
        if op in RELATIVE:
            seconds = self._duration(value, path)
            return _BAD if seconds is None else seconds
        if op in DATE_PARTS:
            return self._date_part(op, value, path)
        if op == "in":
            if not isinstance(value, list) or not 0 < len(value) <= MAX_LIST:
                self._fail(path, f"`in` takes a list of 1 to {MAX_LIST} values",
                           hint="e.g. `in: [Moscow, Kazan]`")
                return _BAD
            items = [self._scalar(v, kind, date_path, name, (*path, i), op="eq")
                     for i, v in enumerate(value)]
            return _BAD if any(i is _BAD for i in items) else tuple(items)
        return self._scalar(value, kind, date_path, name, path, op=op)

    def _date_part(self, op: str, value: Any, path: Path) -> Any:
        top = 12 if op == "month" else 31
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= top
                                for v in items):
            self._fail(path, f"`{op}` takes a number from 1 to {top}, or a list of them",
                       hint=f"e.g. `{op}: 5`" if op == "month" else f"e.g. `{op}: 14`")
            return _BAD
        return tuple(sorted(set(items)))

    def _scalar(self, value: Any, kind: FieldKind, date_path: str | None, name: str,
                path: Path, *, op: str) -> Any:
        ordered = op in ("lt", "lte", "gt", "gte")
        if isinstance(value, float) and not math.isfinite(value):
            self._fail(path, "numbers must be finite")
            return _BAD
        if kind == "text":
            if isinstance(value, str):
                return value
            self._fail(path, f"`{name}` holds text; compare it with text, not "
                       f"`{_show(value)}`", hint="put the value in quotes")
            return _BAD
        if kind == "bool":
            if isinstance(value, bool):
                return value
            self._fail(path, f"`{name}` is true or false, not `{_show(value)}`")
            return _BAD
        if kind in ("date", "datetime", "json") and (kind != "json" or date_path is not None):
            moment = _as_moment(value)
            if moment is None:
                self._fail(path, f"`{name}` holds a date; `{_show(value)}` is not one",
                           hint="write an ISO date such as 2026-05-14 (or a date-time "
                           "with its offset, 2026-05-14T10:00:00+03:00)")
                return _BAD
            if isinstance(moment, datetime) and moment.tzinfo is None:
                self._fail(path, "a date-time needs its offset",
                           hint="e.g. 2026-05-14T10:00:00+03:00 or 2026-05-14T07:00:00Z")
                return _BAD
            return moment
        # an attribute without a known type: the value's own type says how to compare
        if isinstance(value, bool):
            if ordered:
                self._fail(path, f"`{op}` compares numbers or dates, not true/false")
                return _BAD
            return value
        if isinstance(value, int | float):
            return value
        if isinstance(value, datetime):
            if value.tzinfo is None:
                self._fail(path, "a date-time needs its offset",
                           hint="e.g. 2026-05-14T10:00:00+03:00")
                return _BAD
            return value
        if isinstance(value, date | str):
            if ordered and _as_moment(value) is None:
                self._fail(path, f"`{op}` compares numbers or dates; `{_show(value)}` is "
                           "neither", hint="compare text with eq, ne, in or contains")
                return _BAD
            return value
        self._fail(path, f"`{_show(value)}` is not a value to compare with",
                   hint="give text, a number, true/false or a date")
        return _BAD


_BAD = object()


def _as_moment(value: Any) -> date | datetime | None:
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str):
        return None
    try:
        if len(value) <= 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def normalise(raw: Any) -> Any:
    """The filter as plain JSON: dates and date-times as ISO text (the parser reads them
    back as dates wherever a date is expected)."""
    if isinstance(raw, dict):
        return {str(k): normalise(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [normalise(v) for v in raw]
    if isinstance(raw, datetime | date):
        return raw.isoformat()
    return raw

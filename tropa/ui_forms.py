"""Form hints per step type for a visual journey builder, derived from the JSON Schema.

Each field gets a widget inferred from its schema (a duration, a template, a condition, a
choice, a step list...), then the step type's own `ui` hints override it. A builder renders
forms from this without knowing Python or pydantic.
"""

from __future__ import annotations

from typing import Any

from tropa.steps.registry import Registry, StepType

FORMS_VERSION = 1
_DURATION_PATTERN = r"^(\d+[smhdw])+$"
_HEADER_SKIP = ("steps",)  # the builder's canvas holds the steps, not a form field


def forms(reg: Registry, schema: dict[str, Any]) -> dict[str, Any]:
    """Form hints for the journey header and every step type of `reg`."""
    defs: dict[str, Any] = schema["$defs"]
    step_props = defs["step"]["properties"]
    return {
        "version": FORMS_VERSION,
        "schema": "journey.schema.json",
        "widgets": WIDGETS,
        "journey": {
            "label": "Journey",
            "fields": [f for f in _fields(schema, defs, {}) if f["name"] not in _HEADER_SKIP],
        },
        "steps": [_step_form(s, step_props[s.name], defs) for s in reg],
    }


WIDGETS: dict[str, str] = {
    "text": "one line of text",
    "textarea": "several lines of text",
    "template": "message text with Jinja2 placeholders: customer, event, steps, journey",
    "expression": "a condition, e.g. customer.phone_verified or event.data.total > 1000",
    "duration": "a duration such as 30m, 4h, 3d, 1d12h",
    "time": "a local time of day, HH:MM",
    "datetime": "a moment with its UTC offset",
    "number": "a whole number; see min and max",
    "checkbox": "yes or no",
    "select": "one of `enum`",
    "radio": "one of `enum`, shown side by side",
    "multiselect": "several of `enum`, in order",
    "tags": "a list of free words",
    "key-value": "a mapping of names to values",
    "group": "a nested form; see `fields`",
    "list": "a list of nested forms; see `item_fields`",
    "steps": "a nested list of steps, drawn as a branch of the canvas",
}
"""Every widget name a form may use, with what it edits."""


def _step_form(step: StepType, value_schema: dict[str, Any],
               defs: dict[str, Any]) -> dict[str, Any]:
    params = _resolve(value_schema["anyOf"][0], defs)
    hints: dict[str, Any] = step.ui.get("fields", {})
    form: dict[str, Any] = {
        "type": step.name,
        "label": step.label or _label(step.name),
        "description": step.description,
        "kind": step.kind,
        "icon": step.ui.get("icon"),
        "shorthand": step.shorthand,
        "fields": _fields(params, defs, hints),
    }
    if step.examples:
        form["example"] = step.examples[0]
    return form


def _fields(model: dict[str, Any], defs: dict[str, Any],
            hints: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(model.get("required", []))
    return [_field(name, prop, defs, name in required, hints.get(name, {}))
            for name, prop in model.get("properties", {}).items()]


def _field(name: str, prop: dict[str, Any], defs: dict[str, Any], required: bool,
           hint: dict[str, Any]) -> dict[str, Any]:
    nullable, core = _unwrap(prop, defs)
    field: dict[str, Any] = {
        "name": name,
        "label": hint.get("label") or _label(name),
        "widget": _widget(core, prop),
        "required": required,
        "description": prop.get("description") or core.get("description", ""),
    }
    if nullable:
        field["nullable"] = True
    for key in ("default", "examples", "pattern", "minimum", "maximum", "exclusiveMinimum",
                "minItems"):
        if key in prop:
            field[key] = prop[key]
        elif key in core:
            field[key] = core[key]
    choices = core.get("enum") or _resolve(core.get("items", {}), defs).get("enum")
    if choices:
        field["enum"] = choices
    if field["widget"] == "group":
        field["fields"] = _fields(core, defs, hint.get("fields", {}))
    elif field["widget"] == "list":
        item = _item_model(core["items"])
        assert item is not None
        model = _resolve(item, defs)
        field["item_fields"] = _fields(model, defs, hint.get("fields", {}))
        if "anyOf" in core["items"] and model.get("required"):
            # A bare scalar item fills the first required field: `exit_on: [order.placed]`.
            field["item_shorthand"] = model["required"][0]
    field.update({k: v for k, v in hint.items() if k not in ("label", "fields")})
    return field


def _unwrap(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(may be null, the non-null schema) of an `X | None` field."""
    options = prop.get("anyOf")
    if not options:
        return False, _resolve(prop, defs)
    rest = [o for o in options if o.get("type") != "null"]
    core = _resolve(rest[0], defs) if len(rest) == 1 else prop
    return len(rest) < len(options), core


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in schema.items()
                                                        if k != "$ref"}}
    return schema


def _widget(core: dict[str, Any], prop: dict[str, Any]) -> str:
    marked = {**core, **prop}
    if marked.get("x-steps"):
        return "steps"
    if marked.get("x-condition"):
        return "expression"
    if marked.get("x-template"):
        return "template"
    kind = core.get("type")
    if core.get("pattern") == _DURATION_PATTERN:
        return "duration"
    if core.get("enum"):
        return "select"
    if core.get("format") == "date-time":
        return "datetime"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "array":
        items = core.get("items", {})
        if _item_model(items) is not None:
            return "list"
        return "multiselect" if items.get("enum") else "tags"
    if kind == "object" or "properties" in core:
        return "group" if "properties" in core else "key-value"
    return "text"


def _item_model(items: dict[str, Any]) -> dict[str, Any] | None:
    """The `$ref` an array's items point at, also when a scalar shorthand is allowed."""
    if "$ref" in items:
        return items
    return next((o for o in items.get("anyOf", []) if "$ref" in o), None)


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()

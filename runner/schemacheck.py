"""JSON Schema errors in plain language, each at the line and column of what is wrong.

The plan schema (`schemas/plan.schema.json`) is the single definition of the format; this
module turns python-jsonschema's errors into `Problem`s an administrator can act on: unknown
keys with "did you mean", unknown actions listing the valid ones, types named the way YAML
writes them, and `patternErrorMessage` (the annotation editors show) for patterns.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.actions import registry
from runner.planfile import RawPlan
from runner.problem import Problem
from runner.yamlfile import pointer_token

# Values the identity checks (`runner/identity.py`) report on with better messages.
IDENTITY_POINTER = re.compile(
    r"^/targets/\d+/(user|group|query)$|^/safety/(protected_users|protected_groups|allow_privileged)/\d+$"
)

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}
_YAML_1_1_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n", "true", "false"})
_SHOWN_MAX = 60


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate `word` is most likely a misspelling of, if one is close enough."""
    best: tuple[float, str] | None = None
    lowered = word.casefold()
    for candidate in candidates:
        parts = candidate.split("_")
        forms = [candidate] + ["_".join(parts[:n]) for n in range(1, len(parts))]
        for form in forms:
            ratio = difflib.SequenceMatcher(None, lowered, form.casefold()).ratio()
            needed = 0.6 if form == candidate else 0.8
            if ratio >= needed and (best is None or ratio > best[0]):
                best = (ratio, candidate)
    return best[1] if best else None


def describe(value: Any) -> str:
    """A value as the error message shows it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "..."
        return f"the text {shown!a}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + pointer_token(part) for part in path)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Error:
    """The parts of a jsonschema error this module reads, typed."""

    keyword: str
    value: Any
    instance: Any
    schema: Mapping[str, Any]
    pointer: str
    message: str


def _adapt(error: ValidationError) -> _Error:
    return _Error(
        keyword=str(error.validator),
        value=error.validator_value,
        instance=error.instance,
        schema=error.schema if isinstance(error.schema, Mapping) else {},
        pointer=_pointer(error.absolute_path),
        message=error.message,
    )


def _type_message(error: _Error) -> str:
    pointer = error.pointer
    expected = error.value
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    value = error.instance
    message = f"expected {wanted}, got {describe(value)}"
    if "string" in names and isinstance(value, int | float) and not isinstance(value, bool):
        message += f'; quote it: "{value}"'
    elif "boolean" in names and isinstance(value, str):
        if value.casefold() in _YAML_1_1_BOOLEANS:
            message += f" (plans read {value!a} as text); write true or false"
    elif re.fullmatch(r"/targets", pointer) and not isinstance(value, list):
        message += "; list one target per line, like `- user: alice@contoso.com`"
    elif re.fullmatch(r"/targets/\d+", pointer) and isinstance(value, str):
        message += "; write `- user: alice@contoso.com` (or group: / query:)"
    elif pointer.endswith("/actions") and isinstance(value, str):
        message += "; write a list, like [reset_password, revoke_sessions]"
    return message


def _enum_message(error: _Error) -> str:
    allowed = list(error.value)
    value = error.instance
    if set(allowed) == set(registry.accepted_names()):
        hint = suggest(value, registry.accepted_names()) if isinstance(value, str) else None
        return _unknown("action", value, hint, registry.names())
    if set(allowed) == set(registry.METHOD_KINDS):
        if isinstance(value, str) and value.casefold() == "password":
            return "the password is not a method that can be removed; use the reset_password action"
        hint = suggest(value, registry.METHOD_KINDS) if isinstance(value, str) else None
        return _unknown("method type", value, hint, registry.METHOD_KINDS)
    choices = ", ".join(str(item) for item in allowed)
    return f"expected one of {choices}, got {describe(value)}"


def _unknown(what: str, value: Any, hint: str | None, valid: Sequence[str]) -> str:
    message = f"unknown {what} {describe(value).removeprefix('the text ')}"
    if hint:
        message += f"; did you mean {hint!r}?"
    return message + f" (valid: {', '.join(valid)})"


def _required_hint(key: str) -> str:
    hints = {
        "version": " (add `version: 1`)",
        "name": " (add `name: ...`; it names the run folder)",
        "state": " (enabled, enforced or disabled)",
        "method_types": " (a list of method types, like [fido2, email])",
    }
    return hints.get(key, "")


def _problems_for(error: _Error, doc: RawPlan) -> list[Problem]:
    pointer = error.pointer
    where = doc.locate(pointer)
    keyword = error.keyword
    if keyword == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        problems = []
        for key in error.instance:
            if key in allowed:
                continue
            hint = suggest(key, allowed)
            extra = f"; did you mean {hint!r}?" if hint else f" (allowed: {', '.join(allowed)})"
            child = pointer + "/" + pointer_token(key)
            problems.append(
                Problem.at(
                    doc.locate(child, key=True), f"unknown key {key!a}{extra}", pointer=child
                )
            )
        return problems
    if keyword == "required":
        missing = [key for key in error.value if key not in error.instance]
        where = doc.locate(pointer, key=True)
        return [
            Problem.at(where, f"missing required key {key!r}{_required_hint(key)}", pointer=pointer)
            for key in missing
        ]
    if keyword == "oneOf":
        return _target_kind_problem(error, doc, pointer)
    return [Problem.at(where, _message(error), pointer=pointer)]


def _message(error: _Error) -> str:
    keyword = error.keyword
    value = error.value
    if keyword == "type":
        return _type_message(error)
    if keyword == "enum":
        return _enum_message(error)
    if keyword == "const":
        return f"must be {value}, got {describe(error.instance)}"
    if keyword == "pattern":
        custom = error.schema.get("patternErrorMessage")
        return str(custom) if custom else f"does not match the pattern {value}"
    if keyword == "minimum":
        return (
            f"must be at least {value}, got {describe(error.instance).removeprefix('the number ')}"
        )
    if keyword == "maximum":
        return (
            f"must be at most {value}, got {describe(error.instance).removeprefix('the number ')}"
        )
    if keyword in {"minItems", "minLength"} and value == 1:
        return "must not be empty"
    if keyword == "uniqueItems":
        items = list(error.instance)
        twice = next((item for i, item in enumerate(items) if item in items[:i]), None)
        return f"lists {describe(twice).removeprefix('the text ')} twice; keep one"
    return error.message


def _target_kind_problem(error: _Error, doc: RawPlan, pointer: str) -> list[Problem]:
    target = error.instance
    if not isinstance(target, Mapping):
        return []  # the type error says it
    kinds = [kind for kind in ("user", "group", "query") if kind in target]
    if not kinds:
        if any(key not in {"actions", "note", "ticket"} for key in target):
            return []  # an unknown key (a misspelt `user:`?) is reported with a suggestion
        message = "a target needs one of user, group or query"
    else:
        has = " and ".join(kinds)
        message = f"a target names exactly one of user, group or query; this one has {has}"
    return [Problem.at(doc.locate(pointer), message, pointer=pointer)]


# Values whose only schema checks are the ones `identity` makes better, and free text: masked
# before validation so that thousands of CSV rows validate as a handful of distinct shapes.
_MASKS = {"user": "masked@contoso.com", "group": "masked", "query": "masked"}
_FREE_TEXT = ("note", "ticket")


def _masked(target: Any) -> Any:
    if not isinstance(target, dict):
        return target
    masked = dict(target)
    for key, value in target.items():
        if isinstance(value, str) and key in _MASKS:
            masked[key] = _MASKS[key]
        elif isinstance(value, str) and key in _FREE_TEXT:
            masked[key] = "x" if value else ""
    return masked


def _errors(doc: RawPlan, schema: Mapping[str, Any]) -> Iterator[_Error]:
    validator = Draft202012Validator(schema)
    targets = doc.data.get("targets") if isinstance(doc.data, dict) else None
    if not isinstance(targets, list):
        yield from (_adapt(error) for error in validator.iter_errors(doc.data))
        return
    yield from (_adapt(error) for error in validator.iter_errors({**doc.data, "targets": []}))
    per_target = validator.evolve(schema=schema["$defs"]["target"])
    seen: dict[str, list[_Error]] = {}
    for index, target in enumerate(targets):
        masked = _masked(target)
        key = json.dumps(masked, sort_keys=True, default=str)
        if key not in seen:
            seen[key] = [_adapt(error) for error in per_target.iter_errors(masked)]
        for error in seen[key]:
            yield replace(error, pointer=f"/targets/{index}{error.pointer}")


def check(doc: RawPlan, schema: Mapping[str, Any]) -> list[Problem]:
    """Every schema problem of the document (identity values are left to `identity`)."""
    problems: list[Problem] = []
    for error in _errors(doc, schema):
        if IDENTITY_POINTER.match(error.pointer) and (
            error.keyword in {"pattern", "minLength"} or error.instance is None
        ):
            continue
        problems.extend(_problems_for(error, doc))
    return problems

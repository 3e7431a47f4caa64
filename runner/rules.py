"""The rules of a plan that a JSON Schema cannot say.

Targets are real identities (`runner/identity.py`) and each is acted on once (the same UPN in
another case is a warning; the same user with other actions is an error); action lists hold
no duplicates (aliases included) or contradictions, and revoking sessions before the password
reset or the disabling is a warning (Microsoft's order); an action that needs options has
them; a plan has targets and every target has actions. Pure: raw data in, problems out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from runner import identity
from runner.actions import registry
from runner.planfile import PlanForm, RawPlan
from runner.problem import Location, Problem, Severity

_REVOKE_FIRST = ("reset_password", "disable_account")


def check(doc: RawPlan) -> list[Problem]:
    """The rules a schema cannot say."""
    data = doc.data
    problems: list[Problem] = []
    targets = data.get("targets")
    targets = targets if isinstance(targets, list) else []
    actions = data.get("actions")
    if isinstance(actions, list):
        problems.extend(_action_list(actions, "/actions", doc))
    problems.extend(_targets(targets, doc))
    problems.extend(_protected(data.get("safety"), doc))
    problems.extend(_options(data, targets, doc))
    no_targets = data.get("targets", []) == []
    if doc.form is PlanForm.YAML and no_targets and "targets_from" not in data:
        where = doc.locate("/targets", key=True)
        message = (
            "no targets: list users, groups or queries under `targets`, "
            "or name a CSV file in `targets_from`"
        )
        problems.append(Problem.at(where, message, pointer="/targets"))
    return problems


def _targets(targets: list[Any], doc: RawPlan) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, tuple[int, tuple[str, ...] | None]] = {}
    without_actions: list[int] = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            continue
        overrides = target.get("actions")
        if isinstance(overrides, list):
            problems.extend(_action_list(overrides, f"/targets/{index}/actions", doc))
        elif "actions" not in target:
            without_actions.append(index)
        kinds = [kind for kind in ("user", "group", "query") if kind in target]
        if len(kinds) != 1:
            continue  # the schema reports a target without exactly one kind
        kind = kinds[0]
        value = target[kind]
        if value is not None and not isinstance(value, str):
            continue  # the schema reports the type
        checked = _CHECKS[kind](value)
        pointer = f"/targets/{index}/{kind}"
        where = doc.locate(pointer)
        problems.extend(
            Problem.at(where, finding.message, pointer=pointer, severity=finding.severity)
            for finding in checked.findings
        )
        if checked.value is None:
            continue
        key = identity.dedupe_key(kind, checked.value)
        chosen = _canonical(overrides) if isinstance(overrides, list) else None
        if key not in seen:
            seen[key] = (index, chosen)
            continue
        first, first_actions = seen[key]
        at = _where_text(doc.locate(f"/targets/{first}"), where)
        if first_actions == chosen:
            message = f"{kind} {checked.value} is listed twice (first at {at}); it is acted on once"
            problems.append(Problem.at(where, message, pointer=pointer, severity=Severity.WARNING))
        else:
            message = (
                f"{kind} {checked.value} is listed twice (first at {at}) with different "
                "actions; keep one"
            )
            problems.append(Problem.at(where, message, pointer=pointer))
    if without_actions and "actions" not in doc.data:
        problems.append(_no_actions(without_actions, doc))
    return problems


_CHECKS: Mapping[str, Callable[[str | None], identity.Checked]] = {
    "user": identity.check_user,
    "group": identity.check_group,
    "query": identity.check_query,
}


def _where_text(first: Location, here: Location) -> str:
    if first.line is None:
        return first.path
    return f"line {first.line}" if first.path == here.path else f"{first.path}:{first.line}"


def _no_actions(indexes: list[int], doc: RawPlan) -> Problem:
    count = len(indexes)
    noun = "target has" if count == 1 else "targets have"
    if doc.form is PlanForm.CSV:
        fix = "pass --actions (like --actions disable_account,revoke_sessions)"
        fix += " or add an actions column"
    else:
        fix = "add `actions:` to the plan (for every target) or to the target"
    pointer = f"/targets/{indexes[0]}"
    return Problem.at(doc.locate(pointer), f"{count} {noun} no actions: {fix}", pointer=pointer)


def _canonical(names: list[Any]) -> tuple[str, ...]:
    found = (registry.canonical(name) for name in names if isinstance(name, str))
    return tuple(name for name in found if name is not None)


def _action_list(names: list[Any], pointer: str, doc: RawPlan) -> list[Problem]:
    """Duplicates (aliases included), contradictions, and revoking before the reset."""
    problems: list[Problem] = []
    position: dict[str, int] = {}
    for index, written in enumerate(names):
        name = registry.canonical(written) if isinstance(written, str) else None
        if name is None:
            continue  # the schema reports unknown actions
        if name in position:
            item = f"{pointer}/{index}"
            message = (
                f"{name} is listed twice; keep one"
                if written == name
                else f"{written} is another name for {name}, which is already listed; keep one"
            )
            problems.append(Problem.at(doc.locate(item), message, pointer=item))
            continue
        position[name] = index
    if "disable_account" in position and "enable_account" in position:
        message = "disable_account and enable_account contradict each other; keep one"
        problems.append(Problem.at(doc.locate(pointer), message, pointer=pointer))
    revoke = position.get("revoke_sessions", len(names))
    later = [name for name in _REVOKE_FIRST if position.get(name, -1) > revoke]
    if later:
        item = f"{pointer}/{revoke}"
        message = (
            f"revoke_sessions comes before {later[0]}, so a stolen password could sign in again "
            f"after the revocation; put {later[0]} first (Microsoft's order: disable or reset, "
            "then revoke, then remove methods)"
        )
        problems.append(
            Problem.at(doc.locate(item), message, pointer=item, severity=Severity.WARNING)
        )
    return problems


def _protected(safety: Any, doc: RawPlan) -> list[Problem]:
    if not isinstance(safety, dict):
        return []
    checks: tuple[tuple[str, Callable[..., identity.Checked], str], ...] = (
        ("protected_users", identity.check_user, "protected user"),
        ("protected_groups", identity.check_group, "protected group"),
        ("allow_privileged", identity.check_object_id, "object id"),
    )
    problems: list[Problem] = []
    for key, check_one, role in checks:
        values = safety.get(key)
        if not isinstance(values, list):
            continue
        for index, value in enumerate(values):
            if value is not None and not isinstance(value, str):
                continue
            pointer = f"/safety/{key}/{index}"
            problems.extend(
                Problem.at(doc.locate(pointer), f.message, pointer=pointer, severity=f.severity)
                for f in check_one(value, role=role).findings
            )
    return problems


def _options(data: Mapping[str, Any], targets: list[Any], doc: RawPlan) -> list[Problem]:
    """Options an action cannot do without, and a start time that is a real time."""
    options = data.get("options", {})
    if not isinstance(options, dict):
        return []
    used: dict[str, str] = {}
    lists = [("/actions", data.get("actions"))] + [
        (f"/targets/{index}/actions", target.get("actions"))
        for index, target in enumerate(targets)
        if isinstance(target, dict)
    ]
    for pointer, names in lists:
        if isinstance(names, list):
            for index, written in enumerate(names):
                name = registry.canonical(written) if isinstance(written, str) else None
                if name is not None:
                    used.setdefault(name, f"{pointer}/{index}")
    problems: list[Problem] = []
    for name, pointer in used.items():
        spec = registry.ACTIONS[name]
        if not spec.required_options or name in options:
            continue
        message = f"{name} needs options: add `options: {{{name}: {spec.example_options}}}`"
        if doc.form is PlanForm.CSV:
            message += "; a CSV plan cannot carry options, so write a YAML plan with them "
            message += f"and `targets_from: {PurePath(doc.path).name}`"
        problems.append(Problem.at(doc.locate(pointer), message, pointer=pointer))
    problems.extend(_start_time(options, doc))
    return problems


def _start_time(options: Mapping[str, Any], doc: RawPlan) -> list[Problem]:
    tap = options.get("create_temporary_access_pass")
    value = tap.get("start_time") if isinstance(tap, dict) else None
    if not isinstance(value, str) or not re.match(registry.DATE_TIME_PATTERN, value):
        return []  # absent, or the schema's pattern reports it
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        pointer = "/options/create_temporary_access_pass/start_time"
        message = f"{value!a} is not a real date and time"
        return [Problem.at(doc.locate(pointer), message, pointer=pointer)]
    return []

"""Validation: schema and meaning of a plan, every problem at once, then the `Plan`.

`load(path)` reads a plan file (and the CSV its `targets_from` names) through `planfile`,
checks it against the JSON Schema in `schemas/` and against the rules a schema cannot say
(identity of targets, duplicates, action order, options an action needs), and builds the
canonical `Plan` when nothing is wrong. `check(raw)` does the same for data already read.
Problems render as `PATH:LINE:COL: POINTER: message` (CSV: `PATH:LINE: column NAME:
message`) or as JSON. Nothing here opens a network connection.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

from runner import identity, planfile, schemacheck
from runner.actions import registry
from runner.plan import PLAN_VERSION, Plan, SourceRef, build
from runner.planfile import CsvDialect, PlanForm, RawPlan
from runner.problem import Location, PlanFileError, Problem, Severity, ordered
from runner.resources import data_dir

__all__ = [
    "PROBLEM_LIMIT",
    "CsvPlanSettings",
    "Problem",
    "Severity",
    "Validated",
    "check",
    "load",
    "plan_schema",
    "render_json",
    "render_text",
]

SCHEMA_FILE = "plan.schema.json"
PROBLEM_LIMIT = 50

_TARGET_POINTER = re.compile(r"^/targets/(\d+)(.*)$")
_REVOKE_FIRST = ("reset_password", "disable_account")

TargetsReader = Callable[[str], RawPlan]


@functools.cache
def plan_schema() -> Mapping[str, Any]:
    """The plan's JSON Schema, from `schemas/` (checkout) or the wheel's data."""
    text = (data_dir("schemas") / SCHEMA_FILE).read_text(encoding="utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvPlanSettings:
    """A CSV plan's plan-level settings, from `--actions`, `--name` and `--ticket`."""

    actions: tuple[str, ...] | None = None
    name: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Validated:
    """The outcome for one plan file: its problems, and the `Plan` when there is no error."""

    path: str
    form: PlanForm | None
    plan: Plan | None
    problems: tuple[Problem, ...]
    blank_lines: int = 0

    @property
    def errors(self) -> int:
        """How many problems are errors."""
        return sum(1 for problem in self.problems if problem.is_error)

    @property
    def warnings(self) -> int:
        """How many problems are warnings."""
        return len(self.problems) - self.errors

    @property
    def ok(self) -> bool:
        """True when the plan is valid (warnings allowed)."""
        return self.plan is not None


def load(
    path: str | Path,
    *,
    dialect: CsvDialect | None = None,
    settings: CsvPlanSettings | None = None,
) -> Validated:
    """Read and check one plan file (YAML, or CSV with `settings`); never raises for input."""
    try:
        raw = planfile.read(path, dialect=dialect)
    except PlanFileError as exc:
        return Validated(
            path=str(path), form=planfile.form_of(path), plan=None, problems=exc.problems
        )
    return check(
        raw,
        settings=settings,
        read_targets=functools.partial(_read_csv, dialect=dialect),
    )


def _read_csv(path: str, *, dialect: CsvDialect | None) -> RawPlan:
    return planfile.read(path, dialect=dialect)


def check(
    raw: RawPlan,
    *,
    settings: CsvPlanSettings | None = None,
    read_targets: TargetsReader | None = None,
) -> Validated:
    """Check data already read; `read_targets` reads the CSV a `targets_from` names."""
    problems = list(raw.problems)
    if raw.form is PlanForm.CSV:
        doc = _csv_document(raw, settings or CsvPlanSettings())
    else:
        version = _version_problem(raw)
        if version is not None:
            return Validated(path=raw.path, form=raw.form, plan=None, problems=(version,))
        doc, found = _with_targets_from(raw, read_targets)
        problems.extend(found)
    problems.extend(schemacheck.check(doc, plan_schema()))
    problems.extend(_meaning(doc))
    result = ordered(problems)
    plan = None
    if not any(problem.is_error for problem in result):
        targets = doc.data.get("targets") or []
        sources = [_source(doc.locate(f"/targets/{index}")) for index in range(len(targets))]
        plan = build(doc.data, target_sources=sources, source=SourceRef(path=raw.path))
    return Validated(
        path=raw.path, form=raw.form, plan=plan, problems=result, blank_lines=doc.blank_lines
    )


def _source(where: Location) -> SourceRef:
    return SourceRef(path=where.path, line=where.line, col=where.col)


def _version_problem(raw: RawPlan) -> Problem | None:
    """Check `version` before anything else: a newer plan must not drown in other errors."""
    if "version" not in raw.data:
        return None
    version = raw.data["version"]
    if type(version) is int and version == PLAN_VERSION:
        return None
    where = raw.locate("/version")
    if type(version) is int:
        message = (
            f"unsupported plan version {version}: this entra-bulk reads version "
            f"{PLAN_VERSION} plans; upgrade entra-bulk or write a version {PLAN_VERSION} plan"
        )
    else:
        message = f"version must be the number {PLAN_VERSION}, got {schemacheck.describe(version)}"
    return Problem.at(where, message, pointer="/version")


def _csv_document(raw: RawPlan, settings: CsvPlanSettings) -> RawPlan:
    """A CSV's targets with the plan-level settings the command line gives them."""
    data: dict[str, Any] = {
        "version": PLAN_VERSION,
        "name": settings.name if settings.name is not None else PurePath(raw.path).stem,
        "targets": raw.data["targets"],
    }
    locations = dict(raw.locations)
    locations["/name"] = Location(path=raw.path, option="--name")
    if settings.actions is not None:
        data["actions"] = list(settings.actions)
        option = Location(path=raw.path, option="--actions")
        locations["/actions"] = option
        locations.update({f"/actions/{index}": option for index in range(len(settings.actions))})
    if settings.ticket is not None:
        data["ticket"] = settings.ticket
        locations["/ticket"] = Location(path=raw.path, option="--ticket")
    return replace(raw, data=data, locations=locations)


def _with_targets_from(
    doc: RawPlan, read_targets: TargetsReader | None
) -> tuple[RawPlan, list[Problem]]:
    """The plan with the targets of the CSV its `targets_from` names appended."""
    value = doc.data.get("targets_from")
    if not isinstance(value, str) or not value.strip():
        return doc, []
    where = doc.locate("/targets_from")
    csv_path = str(PurePath(doc.path).parent / value)
    if planfile.form_of(csv_path) is not PlanForm.CSV:
        message = f"targets_from names a CSV file (.csv, .tsv or .txt), not {value!a}"
        return doc, [Problem.at(where, message, pointer="/targets_from")]
    if read_targets is None:
        message = "targets_from cannot be read here: check the plan with validate.load"
        return doc, [Problem.at(where, message, pointer="/targets_from")]
    try:
        csv = read_targets(csv_path)
    except PlanFileError as exc:
        return doc, [_pointed_at(problem, where, csv_path) for problem in exc.problems]
    inline = doc.data.get("targets", [])
    if not isinstance(inline, list):
        return doc, list(csv.problems)  # the schema reports `targets`; nothing to append to
    offset = len(inline)
    locations = dict(doc.locations)
    for pointer, location in csv.locations.items():
        match = _TARGET_POINTER.match(pointer)
        if match:
            locations[f"/targets/{int(match.group(1)) + offset}{match.group(2)}"] = location
    data = {**doc.data, "targets": [*inline, *csv.data["targets"]]}
    merged = replace(doc, data=data, locations=locations, blank_lines=csv.blank_lines)
    return merged, list(csv.problems)


def _pointed_at(problem: Problem, where: Location, csv_path: str) -> Problem:
    """A CSV problem with no line of its own is shown at the plan's `targets_from`."""
    if problem.line is not None:
        return problem
    return Problem.at(where, f"{csv_path}: {problem.message}", pointer="/targets_from")


def _meaning(doc: RawPlan) -> list[Problem]:
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


def render_text(results: Sequence[Validated], *, limit: int = PROBLEM_LIMIT) -> list[str]:
    """The problems of each file, one per line, at most `limit` per file."""
    lines: list[str] = []
    for result in results:
        lines.extend(problem.render() for problem in result.problems[:limit])
        rest = len(result.problems) - limit
        if rest > 0:
            lines.append(
                f"{result.path}: {rest} more problem{'s' if rest != 1 else ''} not shown; "
                "fix these and run `entra-bulk validate` again"
            )
    return lines


def summary(result: Validated) -> str:
    """One line: valid with how many targets, or how many errors and warnings."""
    warnings = f"{result.warnings} warning{'s' if result.warnings != 1 else ''}"
    if result.plan is None:
        errors = f"{result.errors} error{'s' if result.errors != 1 else ''}"
        return f"{result.path}: invalid ({errors}, {warnings})"
    count = len(result.plan.targets)
    details = [f"{count} target{'s' if count != 1 else ''}"]
    if result.warnings:
        details.append(warnings)
    if result.blank_lines:
        blank = result.blank_lines
        details.append(f"{blank} blank line{'s' if blank != 1 else ''} ignored")
    return f"{result.path}: valid ({', '.join(details)})"


def render_json(results: Sequence[Validated], *, limit: int = PROBLEM_LIMIT) -> dict[str, Any]:
    """Every file's outcome as JSON data (problems capped at `limit` per file)."""
    return {
        "valid": all(result.ok for result in results),
        "files": [
            {
                "path": result.path,
                "form": None if result.form is None else str(result.form),
                "valid": result.ok,
                "errors": result.errors,
                "warnings": result.warnings,
                "targets": None if result.plan is None else len(result.plan.targets),
                "blank_lines": result.blank_lines,
                "problems": [problem.to_json() for problem in result.problems[:limit]],
                "omitted": max(0, len(result.problems) - limit),
            }
            for result in results
        ],
    }

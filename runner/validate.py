"""Validation: schema and meaning of a plan, every problem at once, then the `Plan`.

`load(path)` reads a plan file (and the CSV its `targets_from` names) through `planfile`,
checks it against the JSON Schema in `schemas/` and against the rules a schema cannot say
(identity of targets, duplicates, action order, options an action needs), and builds the
canonical `Plan` when nothing is wrong. `check(raw)` does the same for data already read.
Problems render as `PATH:LINE:COL: POINTER: message` (CSV: `PATH:LINE: column NAME:
message`) or as JSON. Nothing here opens a network connection.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

from runner import planfile, rules, schemacheck
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
    "summary",
]

SCHEMA_FILE = "plan.schema.json"
PROBLEM_LIMIT = 50

_TARGET_POINTER = re.compile(r"^/targets/(\d+)(.*)$")

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
    problems.extend(rules.check(doc))
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

"""CSV target lists: our own columns and the Entra admin center's bulk templates.

A header row, then one target per row (product-spec section 4). The tokenizer here is RFC
4180 with every problem tied to the *physical* line it is on: ragged rows, unterminated
quotes (reported where the quote opened; the following lines are still read as rows), text
after a closing quote, NUL bytes and fields over 128 KiB. Blank lines (and rows of empty
cells, which spreadsheets leave behind) are skipped and counted. The separator is never
guessed: a header that uses another one is an error naming the `--delimiter` to pass.
Pure: text in, raw targets and positions out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runner.actions import registry
from runner.problem import Location, PlanFileError, Problem, Severity

FIELD_LIMIT = 128 * 1024

TARGET_COLUMNS: tuple[str, ...] = (
    "user",
    "userPrincipalName",
    "UPN",
    "id",
    "objectId",
    # The Entra admin center's group-member templates name it so.
    "memberObjectIdOrUpn",
)
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}
DELIMITER_OPTIONS = {",": ",", ";": "';'", "\t": "tab"}

_TEMPLATE_VERSION = re.compile(r"^version:v[0-9][0-9.]*[,;\t]*$", re.IGNORECASE)
_TEMPLATE_HEADER = re.compile(r"^.*\[\s*([A-Za-z0-9_]+)\s*\]\s*(?:Required)?\s*$", re.IGNORECASE)
_EXAMPLE_CELL = re.compile(r"^\s*example\s*:", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0", ""})


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    """The targets of a CSV file as raw plan data, with the position of every value."""

    data: dict[str, Any]
    locations: dict[str, Location]
    problems: tuple[Problem, ...]
    rows: int
    blank_lines: int


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    fields: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Column:
    index: int
    name: str
    role: str  # "user", "actions", "ticket", "note", "action:<canonical>", "ignored"


def _tokenize(
    lines: list[str], start: int, delimiter: str, path: str, problems: list[Problem]
) -> Iterator[_Record]:
    index = start
    while index < len(lines):
        start = index
        fields, index, error = _record(lines, start, delimiter)
        if error is not None:
            line, message = error
            problems.append(Problem(path=path, line=line, message=message))
            index = max(index, start + 1)
            continue
        yield _Record(line=start + 1, fields=fields)


def _record(
    lines: list[str], start: int, delimiter: str
) -> tuple[list[str], int, tuple[int, str] | None]:
    """Read one record starting at line index `start`: fields, next index, error."""
    fields: list[str] = []
    row = start
    text = lines[row]
    pos = 0
    while True:
        if "\x00" in text:
            return fields, row + 1, (row + 1, _NUL_MESSAGE)
        if not text.startswith('"', pos):
            end = text.find(delimiter, pos)
            value = text[pos:] if end == -1 else text[pos:end]
            if len(value) > FIELD_LIMIT:
                return fields, row + 1, (row + 1, _too_large())
            fields.append(value)
            if end == -1:
                return fields, row + 1, None
            pos = end + len(delimiter)
            continue
        quote_row = row
        pos += 1
        parts: list[str] = []
        size = 0
        while True:
            close = text.find('"', pos)
            if close == -1:
                parts.append(text[pos:])
                parts.append("\n")
                size += len(text) - pos + 1
                row += 1
                if row >= len(lines):
                    message = f"unterminated quoted field starting at line {quote_row + 1}"
                    return fields, start + 1, (quote_row + 1, message + "; close the quote")
                if size > FIELD_LIMIT:
                    message = _too_large() + f" (a quote opened at line {quote_row + 1})"
                    return fields, start + 1, (quote_row + 1, message)
                text = lines[row]
                pos = 0
                if "\x00" in text:
                    return fields, row + 1, (row + 1, _NUL_MESSAGE)
                continue
            parts.append(text[pos:close])
            size += close - pos
            if text.startswith('"', close + 1):
                parts.append('"')
                pos = close + 2
                continue
            pos = close + 1
            break
        value = "".join(parts)
        if size > FIELD_LIMIT:
            return fields, row + 1, (quote_row + 1, _too_large())
        fields.append(value)
        if pos == len(text):
            return fields, row + 1, None
        if not text.startswith(delimiter, pos):
            if quote_row != row:
                message = (
                    f"the quoted field starting at line {quote_row + 1} is not closed properly "
                    f"(the quote that ends it on line {row + 1} is followed by text)"
                )
                return fields, start + 1, (quote_row + 1, message + "; check its quotes")
            message = 'text after a closing quote; double a quote inside a quoted field ("")'
            return fields, row + 1, (row + 1, message)
        pos += len(delimiter)
        if pos == len(text):
            fields.append("")
            return fields, row + 1, None


_NUL_MESSAGE = "NUL byte in this line: the file is damaged or not text; re-save it as CSV UTF-8"


def _too_large() -> str:
    return f"field too large (over {FIELD_LIMIT // 1024} KiB)"


def _is_blank(fields: list[str]) -> bool:
    return all(not value.strip() for value in fields)


def choose_delimiter(header: str, *, given: str | None, utf16: bool, path: str, line: int) -> str:
    """The separator to split with; a header that shows another one is an error with a hint."""
    if given is not None:
        expected = given
    elif utf16 and "\t" in header:
        expected = "\t"
    else:
        expected = ","
    if expected in header:
        return expected
    for other in (";", "\t", ","):
        if other != expected and other in header:
            message = (
                f"expected {DELIMITER_NAMES[expected]} between columns but the header uses "
                f"{DELIMITER_NAMES[other]} (use --delimiter {DELIMITER_OPTIONS[other]})"
            )
            raise PlanFileError([Problem(path=path, line=line, message=message)])
    return expected


def _known_columns() -> dict[str, str]:
    known = {name.casefold(): "user" for name in TARGET_COLUMNS}
    known.update({"actions": "actions", "ticket": "ticket", "note": "note"})
    known.update({name: f"action:{registry.canonical(name)}" for name in registry.accepted_names()})
    return known


def _column_name(cell: str) -> str:
    name = cell.strip(" \t")
    template = _TEMPLATE_HEADER.match(name)
    return template.group(1) if template else name


def _columns(header: _Record, path: str) -> tuple[list[_Column], list[Problem]]:
    known = _known_columns()
    spellings = [*TARGET_COLUMNS, "actions", "ticket", "note", *registry.accepted_names()]
    columns: list[_Column] = []
    problems: list[Problem] = []
    seen: dict[str, _Column] = {}
    for index, cell in enumerate(header.fields):
        name = _column_name(cell)
        where = Location(path=path, line=header.line, column=name or f"#{index + 1}")
        if not name:
            problems.append(Problem.at(where, "this column has no name; name it or delete it"))
            continue
        role = known.get(name.casefold(), "ignored")
        if role == "ignored":
            close = difflib.get_close_matches(name, spellings, n=1, cutoff=0.75)
            if close:
                message = f"unknown column {name!r}; did you mean {close[0]!r}?"
                problems.append(Problem.at(where, message))
            else:
                message = f"column {name!r} is not used by entra-bulk and is ignored"
                problems.append(Problem.at(where, message, severity=Severity.WARNING))
        elif role in seen:
            other = seen[role]
            if other.name.casefold() == name.casefold():
                message = f"duplicate column {name!r} (also column {other.index + 1}); keep one"
            else:
                what = "target" if role == "user" else role.removeprefix("action:")
                message = f"columns {other.name!r} and {name!r} both name the {what}; keep one"
            problems.append(Problem.at(where, message))
        column = _Column(index=index, name=name, role=role)
        if role != "ignored":
            seen.setdefault(role, column)
        columns.append(column)
    if "user" not in seen:
        spelled = ", ".join(TARGET_COLUMNS[:-1]) + " or " + TARGET_COLUMNS[-1]
        message = f"missing the target column: name it {spelled}"
        problems.append(Problem(path=path, line=header.line, message=message))
    if any(p.is_error for p in problems):
        raise PlanFileError(problems)
    return columns, problems


def _row(
    record: _Record, columns: list[_Column], path: str, number: int
) -> tuple[dict[str, Any], dict[str, Location], list[Problem]]:
    base = f"/targets/{number}"
    target: dict[str, Any] = {}
    locations = {base: Location(path=path, line=record.line)}
    problems: list[Problem] = []
    listed: list[tuple[str, Location]] = []
    flagged: list[tuple[str, Location]] = []
    declined = False  # an action column says false (not merely empty)
    for column in columns:
        value = record.fields[column.index]
        where = Location(path=path, line=record.line, column=column.name)
        if column.role == "user":
            target["user"] = value
            locations[base + "/user"] = where
        elif column.role in {"ticket", "note"}:
            if value.strip():
                target[column.role] = value.strip()
                locations[f"{base}/{column.role}"] = where
        elif column.role == "actions":
            listed.extend((item.strip(), where) for item in value.split(";") if item.strip())
        elif column.role.startswith("action:"):
            flag = value.strip().casefold()
            if flag in _TRUE:
                flagged.append((column.role.removeprefix("action:"), where))
            elif flag in _FALSE:
                declined = declined or bool(flag)
            else:
                message = f"expected true or false, got {value.strip()!r}"
                problems.append(Problem.at(where, message))
    if declined and not flagged and not listed:
        # All false is not "the plan's actions": that would run exactly what the row declined.
        message = (
            "every action column of this row is false or empty, so it selects no action; "
            "set one to true, or delete the row"
        )
        problems.append(Problem.at(locations[base], message))
    if listed and flagged:
        message = "actions are given both in the actions column and in action columns; use one"
        problems.append(Problem.at(locations[base], message))
    chosen = listed or flagged
    if chosen:
        target["actions"] = [name for name, _ in chosen]
        locations[base + "/actions"] = chosen[0][1]
        for index, (_, where) in enumerate(chosen):
            locations[f"{base}/actions/{index}"] = where
    return target, locations, problems


def _first_content(lines: list[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip(" \t,;"):
            return index
    return None


def parse(text: str, *, path: str, delimiter: str | None = None, utf16: bool = False) -> Targets:
    """Read the targets of a CSV text; raise `PlanFileError` if it cannot be read at all."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    first = _first_content(lines, 0)
    if first is not None and _TEMPLATE_VERSION.match(lines[first].strip(" ")):
        first = _first_content(lines, first + 1)
    if first is None:
        message = "no targets: the file is empty; write a header (user) and one user per row"
        raise PlanFileError([Problem(path=path, line=1, message=message)])
    chosen = choose_delimiter(lines[first], given=delimiter, utf16=utf16, path=path, line=first + 1)
    problems: list[Problem] = []
    records = _tokenize(lines, first, chosen, path, problems)
    header = next(records, None)
    if header is None:
        raise PlanFileError(problems)
    columns, warnings = _columns(header, path)
    problems.extend(warnings)
    targets: list[dict[str, Any]] = []
    locations: dict[str, Location] = {}
    blank = sum(1 for line in lines[:first] if not line.strip(" \t,;")) - (
        1 if any(_TEMPLATE_VERSION.match(line.strip(" ")) for line in lines[:first]) else 0
    )
    first_row = True
    for record in records:
        if _is_blank(record.fields):
            blank += 1
            continue
        example, first_row = first_row and any(map(_EXAMPLE_CELL.match, record.fields)), False
        if len(record.fields) != len(header.fields):
            count = len(record.fields)
            message = (
                f"row has {count} field{'s' if count != 1 else ''}, "
                f"the header has {len(header.fields)}; "
                "check the separators and quotes in this line"
            )
            problems.append(Problem(path=path, line=record.line, message=message))
            continue
        if example:
            message = (
                "this is the template's example row; delete it and list your own users "
                "from the row after the header"
            )
            problems.append(Problem(path=path, line=record.line, message=message))
            continue
        target, where, row_problems = _row(record, columns, path, len(targets))
        targets.append(target)
        locations.update(where)
        problems.extend(row_problems)
    if not targets and not any(p.is_error for p in problems):
        message = "no targets: the file has a header but no rows; add one user per row"
        problems.append(Problem(path=path, line=header.line, message=message))
    return Targets(
        data={"targets": targets},
        locations=locations,
        problems=tuple(problems),
        rows=len(targets),
        blank_lines=max(0, blank),
    )

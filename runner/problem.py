"""What is wrong with an input file, and where: `Problem` records and their rendering.

Reading (`planfile`), identity checks (`identity`) and validation (`validate`) all report
through these records, so that `entra-bulk validate` can print every problem of every file at
once, one per line, as `PATH:LINE:COL: POINTER: message` (YAML) or
`PATH:LINE: column NAME: message` (CSV), or as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runner.errors import InputError


class Severity(StrEnum):
    """An error stops the plan (exit 2); a warning is printed and the plan stays valid."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A place in an input: file, line and column, CSV column or command-line option."""

    path: str
    line: int | None = None
    col: int | None = None
    column: str | None = None
    option: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong (or worth a warning) in a plan, with where it is."""

    path: str
    message: str
    severity: Severity = Severity.ERROR
    line: int | None = None
    col: int | None = None
    pointer: str | None = None
    column: str | None = None
    option: str | None = None
    snippet: str | None = None

    @classmethod
    def at(
        cls,
        where: Location,
        message: str,
        *,
        pointer: str | None = None,
        severity: Severity = Severity.ERROR,
        snippet: str | None = None,
    ) -> Problem:
        """A problem at `where`, about the value at JSON pointer `pointer`."""
        return cls(
            path=where.path,
            line=where.line,
            col=where.col,
            column=where.column,
            option=where.option,
            pointer=pointer,
            message=message,
            severity=severity,
            snippet=snippet,
        )

    @property
    def is_error(self) -> bool:
        """True for an error, False for a warning."""
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        """File, then position (problems without a line first), then message."""
        return (self.path, self.line or 0, self.col or 0, self.message)

    def render(self) -> str:
        """One line (plus an indented source snippet for syntax errors)."""
        head = self.path
        if self.line is not None:
            head += f":{self.line}"
            if self.col is not None and self.column is None:
                head += f":{self.col}"
        parts = [head]
        if self.column is not None:
            parts.append(f"column {self.column}")
        elif self.option is not None:
            parts.append(f"option {self.option}")
        elif self.pointer and (self.col is not None or self.line is None):
            parts.append(self.pointer)  # a CSV row (line, no column) has no pointer to show
        text = self.message if self.is_error else f"warning: {self.message}"
        line = ": ".join([*parts, text])
        if self.snippet:
            line += "\n" + "\n".join("    " + row for row in self.snippet.splitlines())
        return line

    def to_json(self) -> dict[str, Any]:
        """The problem as a JSON object (every field, null where unknown)."""
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "column": self.column,
            "option": self.option,
            "severity": str(self.severity),
            "message": self.message,
        }


def ordered(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    """Problems in file order, each once."""
    return tuple(sorted(set(problems), key=Problem.sort_key))


class PlanFileError(InputError):
    """A plan file cannot be read at all (encoding, syntax, size): its problems say where."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = ordered(problems)
        first = self.problems[0].render() if self.problems else "unreadable plan file"
        super().__init__(first)

"""Reading plan files: the only module of the plan language that touches the disk.

`read(path)` returns a `RawPlan`: the file's data as plain dicts and lists, where each value
(and each mapping key) sits, and the problems found while reading (duplicate keys, bad CSV
rows). A file that cannot be read at all raises `PlanFileError` naming file and line. Sizes
are checked before a byte is parsed (10 MB for YAML plans, more for CSV lists of users);
bytes are decoded strictly (UTF-8, or UTF-16 with a byte-order mark; CSV files may name
another encoding) and invalid bytes are reported with their line. Frozen plans
(`*.plan.json`) will be read and written here too.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner import csvfile, yamlfile
from runner.problem import Location, PlanFileError, Problem

MAX_YAML_BYTES = 10 * 1024 * 1024
# A CSV is a list of users: 100,000 rows of an HR export with its extra columns fit.
MAX_CSV_BYTES = 64 * 1024 * 1024

YAML_SUFFIXES = (".yaml", ".yml")
# Excel saves "Unicode Text" as .txt (UTF-16, tab separated).
CSV_SUFFIXES = (".csv", ".tsv", ".txt")

_UTF8_HINT = "save the plan as UTF-8"
_CSV_HINT = "re-save it as CSV UTF-8 or pass --encoding cp1252"


class PlanForm(StrEnum):
    """The two ways to write a plan."""

    YAML = "yaml"
    CSV = "csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvDialect:
    """How to read CSV files: `--encoding` and `--delimiter` (None: detect as the spec says)."""

    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawPlan:
    """A plan file as read: raw data, positions by JSON pointer, problems met on the way."""

    path: str
    form: PlanForm
    data: Any
    locations: Mapping[str, Location]
    key_locations: Mapping[str, Location] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    blank_lines: int = 0

    def locate(self, pointer: str, *, key: bool = False) -> Location:
        """Where the value at `pointer` is (its key with `key=True`), else its nearest parent."""
        if key and pointer in self.key_locations:
            return self.key_locations[pointer]
        current = pointer
        while True:
            if current in self.locations:
                return self.locations[current]
            if current in self.key_locations:
                return self.key_locations[current]
            if not current:
                return Location(path=self.path)
            current = current.rsplit("/", 1)[0]


def form_of(path: str | Path) -> PlanForm | None:
    """YAML or CSV by the file's extension; None for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in YAML_SUFFIXES:
        return PlanForm.YAML
    if suffix in CSV_SUFFIXES:
        return PlanForm.CSV
    return None


def read(path: str | Path, *, dialect: CsvDialect | None = None) -> RawPlan:
    """Read a YAML or CSV plan file; raise `PlanFileError` if it cannot be read."""
    shown = str(path)
    form = form_of(path)
    if form is None:
        message = "not a plan file: name it .yaml or .yml (a plan) or .csv (a list of users)"
        raise PlanFileError([Problem(path=shown, message=message)])
    limit = MAX_YAML_BYTES if form is PlanForm.YAML else MAX_CSV_BYTES
    data = _read_bytes(Path(path), shown, limit)
    if form is PlanForm.YAML:
        return parse_yaml(data, path=shown)
    return parse_csv(data, path=shown, dialect=dialect or CsvDialect())


def _read_bytes(path: Path, shown: str, limit: int) -> bytes:
    try:
        if path.is_dir():
            message = "is a folder, not a plan file"
            raise PlanFileError([Problem(path=shown, message=message)])
        size = path.stat().st_size
        if size > limit:
            raise PlanFileError([Problem(path=shown, message=_too_big(size, limit))])
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise PlanFileError([Problem(path=shown, message="no such file")]) from None
    except PermissionError:
        message = "cannot read the file: permission denied"
        raise PlanFileError([Problem(path=shown, message=message)]) from None
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        raise PlanFileError([Problem(path=shown, message=message)]) from None
    if len(data) > limit:  # the file grew after stat, or stat does not know (a pipe)
        raise PlanFileError([Problem(path=shown, message=_too_big(len(data), limit))])
    return data


def _too_big(size: int, limit: int) -> str:
    mib = 1024 * 1024
    return f"plan exceeds {limit // mib} MB ({size / mib:.1f} MB); split it into several files"


def parse_yaml(data: bytes, *, path: str) -> RawPlan:
    """A YAML plan from its bytes; raise `PlanFileError` if it cannot be read."""
    if len(data) > MAX_YAML_BYTES:
        raise PlanFileError([Problem(path=path, message=_too_big(len(data), MAX_YAML_BYTES))])
    text, _ = _decode(data, path=path, encoding=None, hint=_UTF8_HINT, with_col=True)
    document = yamlfile.parse(text, path=path)
    if document.data is None:
        message = "plan is empty: start with `version: 1` (the plans/ folder has examples)"
        raise PlanFileError([Problem(path=path, line=1, col=1, message=message)])
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else "a single value"
        message = (
            f"a plan is a mapping of keys (version, name, actions, targets, ...); "
            f"this file holds {kind}"
        )
        where = document.locations.get("", Location(path=path, line=1, col=1))
        raise PlanFileError([Problem.at(where, message)])
    return RawPlan(
        path=path,
        form=PlanForm.YAML,
        data=document.data,
        locations=document.locations,
        key_locations=document.key_locations,
        problems=document.problems,
    )


def parse_csv(data: bytes, *, path: str, dialect: CsvDialect) -> RawPlan:
    """The targets of a CSV file from its bytes; raise `PlanFileError` if it is unreadable."""
    if len(data) > MAX_CSV_BYTES:
        raise PlanFileError([Problem(path=path, message=_too_big(len(data), MAX_CSV_BYTES))])
    text, utf16 = _decode(data, path=path, encoding=dialect.encoding, hint=_CSV_HINT)
    if text.count("\x00") * 4 > len(text) > 0:
        message = (
            "the file looks like UTF-16 without a byte-order mark; "
            "re-save it as CSV UTF-8 or pass --encoding utf-16-le"
        )
        raise PlanFileError([Problem(path=path, line=1, message=message)])
    targets = csvfile.parse(text, path=path, delimiter=dialect.delimiter, utf16=utf16)
    return RawPlan(
        path=path,
        form=PlanForm.CSV,
        data=targets.data,
        locations=targets.locations,
        problems=targets.problems,
        blank_lines=targets.blank_lines,
    )


def _decode(
    data: bytes, *, path: str, encoding: str | None, hint: str, with_col: bool = False
) -> tuple[str, bool]:
    """Text and whether it was UTF-16; strict, with the line of the first bad byte."""
    if data.startswith(codecs.BOM_UTF8):
        codec, body, shown = "utf-8", data[len(codecs.BOM_UTF8) :], "UTF-8"
        skipped = len(codecs.BOM_UTF8)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec, body, shown, skipped = "utf-16", data, "UTF-16", 0
    elif encoding is not None:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            message = f"unknown encoding {encoding!r}: try utf-8, utf-16 or cp1252"
            raise PlanFileError([Problem(path=path, message=message)]) from None
        body, shown, skipped = data, encoding, 0
    else:
        codec, body, shown, skipped = "utf-8", data, "UTF-8", 0
    try:
        text = body.decode(codec)
    except LookupError:  # a codec that is not a text encoding (base64, rot13, ...)
        message = f"{encoding!r} is not a text encoding: try utf-8, utf-16 or cp1252"
        raise PlanFileError([Problem(path=path, message=message)]) from None
    except UnicodeDecodeError as exc:
        offset = exc.start + skipped
        before = data[:offset]
        line = before.count(b"\n") + 1
        col = offset - (before.rfind(b"\n") + 1) + 1 if with_col else None
        bad = data[offset : offset + 1].hex().upper()
        message = f"not valid {shown} at byte offset {offset} (byte 0x{bad}); {hint}"
        if codec == "utf-16":
            line = body[: exc.start].decode(codec, errors="replace").count("\n") + 1
            col = None
            message = f"not valid {shown} at byte offset {offset}; re-save it as CSV UTF-8"
        raise PlanFileError([Problem(path=path, line=line, col=col, message=message)]) from None
    return text.removeprefix("\ufeff"), codec.startswith("utf-16")

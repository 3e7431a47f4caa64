"""Strict YAML: one document of mappings, lists and plain values, with a position for each.

The parser's event stream (PyYAML's safe, pure-Python parser: no constructors run, ever) is
turned into plain data here, so that everything YAML could do behind the reader's back is an
error instead: tags (`!!python/object/apply`), anchors and aliases (billion laughs), merge
keys, duplicate keys (both lines named), several documents, nesting deeper than 64 (checked
as each collection opens, long before a recursion limit). Scalars keep their text: only plain
`true`/`false`, `null`/`~`/empty, decimal integers without leading zeros and plain decimal
floats get a type; `no`, `on`, `0123` and `2024-01-01` stay strings. Quoted is always text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events

from runner.problem import Location, PlanFileError, Problem

MAX_DEPTH = 64

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\.[0-9]{1,17}\Z")
_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_SNIPPET_WIDTH = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """The one document of a YAML file: its data and where each value and key sits."""

    data: Any
    locations: dict[str, Location]
    key_locations: dict[str, Location]
    problems: tuple[Problem, ...] = ()


def pointer_token(key: str | int) -> str:
    """One JSON-pointer reference token (RFC 6901 escaping)."""
    return str(key).replace("~", "~0").replace("/", "~1")


@dataclass(slots=True, kw_only=True)
class _Frame:
    container: dict[str, Any] | list[Any]
    pointer: str
    key: str | None = None
    key_is_duplicate: bool = False
    key_lines: dict[str, int] = field(default_factory=dict)


class _Builder:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.has_root = False
        self.documents = 0
        self.duplicates = 0
        self.locations: dict[str, Location] = {}
        self.key_locations: dict[str, Location] = {}
        self.problems: list[Problem] = []

    def where(self, mark: Any) -> Location:
        return Location(path=self.path, line=mark.line + 1, col=mark.column + 1)

    def fail(self, mark: Any, message: str, *, snippet: bool = False) -> PlanFileError:
        where = self.where(mark)
        shown = _snippet(self.text, mark.line, mark.column) if snippet else None
        return PlanFileError([Problem.at(where, message, snippet=shown)])

    def feed(self, event: events.Event) -> None:
        if isinstance(event, events.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                msg = (
                    "exactly one document expected: this file has another one from here; "
                    "put each plan in its own file"
                )
                raise self.fail(event.start_mark, msg)
            if event.tags:
                raise self.fail(event.start_mark, "tag directives (%TAG) are not allowed")
        elif isinstance(event, events.AliasEvent):
            msg = f"aliases (*{event.anchor}) are not allowed: write the value out in full"
            raise self.fail(event.start_mark, msg)
        elif isinstance(event, events.NodeEvent):
            self._check_node(event)
            if isinstance(event, events.ScalarEvent):
                self._scalar(event)
            elif isinstance(event, events.CollectionStartEvent):
                self._open(event)
        elif isinstance(event, events.CollectionEndEvent):
            frame = self.stack.pop()
            self._place(frame.container)

    def _check_node(self, event: events.NodeEvent) -> None:
        if event.anchor is not None:
            msg = f"anchors (&{event.anchor}) are not allowed: write each value out in full"
            raise self.fail(event.start_mark, msg)
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len(_YAML_TAG_PREFIX) :] if tag.startswith(_YAML_TAG_PREFIX) else tag
            msg = f"tags are not allowed (found {shown}): a plan holds plain values only"
            raise self.fail(event.start_mark, msg)

    def _scalar(self, event: events.ScalarEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.container, dict) and frame.key is None:
            self._key(frame, event)
            return
        value = _typed(event.value) if event.style is None else event.value
        pointer = self._child_pointer()
        self.locations[pointer] = self.where(event.start_mark)
        self._place(value)

    def _key(self, frame: _Frame, event: events.ScalarEvent) -> None:
        key = event.value
        if event.style is None and key == "<<":
            msg = "merge keys (<<) are not allowed: write the keys out in full"
            raise self.fail(event.start_mark, msg)
        where = self.where(event.start_mark)
        first = frame.key_lines.get(key)
        frame.key = key
        frame.key_is_duplicate = first is not None
        if first is not None:
            self.problems.append(
                Problem.at(
                    where,
                    f"duplicate key {key!r} (first at line {first}): keep one",
                    pointer=frame.pointer + "/" + pointer_token(key),
                )
            )
            return
        frame.key_lines[key] = where.line or 0
        self.key_locations[frame.pointer + "/" + pointer_token(key)] = where

    def _open(self, event: events.CollectionStartEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.container, dict) and frame.key is None:
            msg = "keys must be plain text, not lists or mappings"
            raise self.fail(event.start_mark, msg)
        if len(self.stack) >= MAX_DEPTH:
            msg = f"nesting depth > {MAX_DEPTH}: a plan is never this deep; is the file a plan?"
            raise self.fail(event.start_mark, msg)
        pointer = self._child_pointer()
        self.locations[pointer] = self.where(event.start_mark)
        container: dict[str, Any] | list[Any]
        container = {} if isinstance(event, events.MappingStartEvent) else []
        self.stack.append(_Frame(container=container, pointer=pointer))

    def _child_pointer(self) -> str:
        if not self.stack:
            return ""
        frame = self.stack[-1]
        if isinstance(frame.container, list):
            return frame.pointer + "/" + str(len(frame.container))
        if frame.key_is_duplicate:
            # The value of a duplicate key is dropped; its positions go under a pointer no
            # JSON pointer can spell, so that they never shadow the kept value's positions.
            self.duplicates += 1
            return f"{frame.pointer}/\x00duplicate{self.duplicates}"
        return frame.pointer + "/" + pointer_token(frame.key or "")

    def _place(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            self.has_root = True
            return
        frame = self.stack[-1]
        if isinstance(frame.container, list):
            frame.container.append(value)
            return
        if frame.key is not None and not frame.key_is_duplicate:
            frame.container[frame.key] = value
        frame.key = None
        frame.key_is_duplicate = False


def _typed(text: str) -> Any:
    """The value of a plain scalar: YAML 1.2 core types, minus everything surprising."""
    if text in {"true", "false"}:
        return text == "true"
    if text in {"null", "~", ""}:
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


_SYNTAX_HINTS = (
    ("'\\t'", "indent with spaces, not tabs"),
    ("expected <block end>", "this line's indentation does not line up with the lines above"),
    ("mapping values are not allowed", "quote a value that contains ': '"),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("could not find expected ':'", "a key needs ': ' after it, or a quote is not closed"),
)


def _syntax_hint(problem: str) -> str:
    for needle, hint in _SYNTAX_HINTS:
        if needle in problem:
            return f"; {hint}"
    return ""


def _snippet(text: str, line: int, column: int) -> str:
    rows = text.splitlines()
    row = rows[line] if 0 <= line < len(rows) else ""
    start = max(0, column - _SNIPPET_WIDTH // 2)
    shown = row[start : start + _SNIPPET_WIDTH].replace("\t", " ")
    return shown + "\n" + " " * (column - start) + "^"


def parse(text: str, *, path: str) -> Document:
    """Parse one strict YAML document; raise `PlanFileError` if the file cannot be read."""
    builder = _Builder(text, path)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context}" + _syntax_hint(exc.problem or "")
        if mark is None:  # pragma: no cover - PyYAML's parser always sets a mark
            raise PlanFileError([Problem(path=path, message=message)]) from None
        raise builder.fail(mark, message, snippet=True) from None
    except yaml.reader.ReaderError as exc:
        position = max(0, int(exc.position))
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        message = f"character U+{ord(char):04X} is not allowed in a YAML file; remove it"
        raise PlanFileError([Problem(path=path, line=line, col=col, message=message)]) from None
    return Document(
        data=builder.root,
        locations=builder.locations,
        key_locations=builder.key_locations,
        problems=tuple(builder.problems),
    )

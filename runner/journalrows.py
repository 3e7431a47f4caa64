"""The journal's tables and rows: schema, column lists, and rows ⇄ records.

Only `runner/journal.py` opens SQLite; this module and its siblings (`journalmoves`,
`runlock`) work on the connection it hands them, through the small `Connection` protocol.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from runner.runstate import (
    Event,
    Item,
    ItemSpec,
    ItemStatus,
    Orphan,
    RunHeader,
    StepRecord,
    StepStatus,
    TimeSource,
    Transition,
    initial_status,
    stamp,
    unstamp,
)
from runner.secrets import redact

SCHEMA_VERSION = 1
APPLICATION_ID = 0x45425231  # "EBR1": tells a journal from any other SQLite file


class Cursor(Protocol):
    """What the journal's modules use of a DB-API cursor."""

    def fetchone(self) -> Any:
        """The next row or None."""

    def fetchall(self) -> list[Any]:
        """Every remaining row."""


class Connection(Protocol):
    """What the journal's modules use of a DB-API connection."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """Run one statement."""


SCHEMA: tuple[str, ...] = (
    """CREATE TABLE header (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        plan_name TEXT NOT NULL, ticket TEXT, digest TEXT NOT NULL, tenant_id TEXT NOT NULL,
        emulated INTEGER NOT NULL, author TEXT NOT NULL, approvals TEXT NOT NULL,
        content TEXT NOT NULL, options TEXT NOT NULL, created TEXT NOT NULL,
        tool_version TEXT NOT NULL)""",
    """CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        target_index INTEGER NOT NULL, object_id TEXT NOT NULL, upn TEXT NOT NULL,
        display_name TEXT NOT NULL, action TEXT NOT NULL, position INTEGER NOT NULL,
        kind TEXT NOT NULL, summary TEXT NOT NULL, note TEXT, ticket TEXT,
        repeatable INTEGER NOT NULL, initial_status TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, http_status INTEGER,
        error_code TEXT, error_message TEXT, request_id TEXT, started TEXT, finished TEXT,
        verified INTEGER, verified_at TEXT, secret_ref TEXT, detail TEXT NOT NULL DEFAULT '{}',
        updated TEXT NOT NULL,
        UNIQUE (target_index, position))""",
    "CREATE INDEX items_status ON items (status)",
    "CREATE INDEX items_object_id ON items (object_id)",
    """CREATE TABLE steps (
        seq INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items (id), key TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, resend_ok INTEGER NOT NULL DEFAULT 0,
        http_status INTEGER, error_code TEXT, error_message TEXT, request_id TEXT,
        client_request_id TEXT, intent_time TEXT, intent_time_source TEXT, location TEXT,
        created TEXT NOT NULL, updated TEXT NOT NULL, finished TEXT,
        UNIQUE (item_id, key))""",
    "CREATE INDEX steps_status ON steps (status)",
    """CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, step_key TEXT,
        old TEXT NOT NULL, new TEXT NOT NULL, time TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX transitions_item ON transitions (item_id)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TABLE lock (
        id INTEGER PRIMARY KEY CHECK (id = 1), lock_id TEXT NOT NULL, pid INTEGER NOT NULL,
        host TEXT NOT NULL, started TEXT NOT NULL, command TEXT NOT NULL, pid_start TEXT)""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

INSERT_HEADER = "INSERT INTO header VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ITEM = (
    "INSERT INTO items (target_index, object_id, upn, display_name, action, position, kind, "
    "summary, note, ticket, repeatable, initial_status, status, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ITEM_COLUMNS = (
    "id, target_index, object_id, upn, display_name, action, position, kind, summary, note, "
    "ticket, repeatable, initial_status, status, reason, attempts, http_status, error_code, "
    "error_message, request_id, started, finished, verified, verified_at, secret_ref, detail, "
    "updated"
)
STEP_COLUMNS = (
    "item_id, key, label, status, attempts, resend_ok, http_status, error_code, error_message, "
    "request_id, client_request_id, intent_time, intent_time_source, location, created, "
    "updated, finished"
)
HEADER_COLUMNS = (
    "plan_name, ticket, digest, tenant_id, emulated, author, approvals, {content}, options, "
    "created, tool_version"
)


def to_json(value: Any) -> str:
    """Compact, sorted JSON for a TEXT column."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def clean(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """Caller-supplied detail with anything secret-shaped redacted (defence in depth)."""
    if not detail:
        return {}
    return dict(json.loads(redact(to_json(detail))))


def redacted(text: str | None) -> str | None:
    """Free text with anything secret-shaped redacted."""
    return None if text is None else redact(text)


def time_of(text: str) -> dt.datetime:
    """A NOT NULL time column."""
    moment = unstamp(text)
    assert moment is not None  # the column is NOT NULL
    return moment


def header_row(header: RunHeader) -> tuple[Any, ...]:
    """The header table's row for a RunHeader."""
    return (
        header.plan_name,
        header.ticket,
        header.digest,
        header.tenant_id,
        int(header.emulated),
        to_json(header.author),
        to_json(list(header.approvals)),
        to_json(header.content),
        to_json(header.options),
        stamp(header.created),
        header.tool_version,
    )


def header_of(row: Sequence[Any]) -> RunHeader:
    """A RunHeader from a row of HEADER_COLUMNS."""
    return RunHeader(
        plan_name=row[0],
        ticket=row[1],
        digest=row[2],
        tenant_id=row[3],
        emulated=bool(row[4]),
        author=json.loads(row[5]),
        approvals=tuple(json.loads(row[6])),
        content=json.loads(row[7]),
        options=json.loads(row[8]),
        created=time_of(row[9]),
        tool_version=row[10],
    )


def transition_of(row: Sequence[Any]) -> Transition:
    """A Transition from (seq, item_id, step_key, old, new, time, detail)."""
    return Transition(
        seq=row[0],
        item_id=row[1],
        step_key=row[2],
        old=row[3],
        new=row[4],
        time=time_of(row[5]),
        detail=json.loads(row[6]),
    )


def event_of(row: Sequence[Any]) -> Event:
    """An Event from (seq, time, kind, detail)."""
    return Event(seq=row[0], time=time_of(row[1]), kind=row[2], detail=json.loads(row[3]))


def item_row(spec: ItemSpec, now: str) -> tuple[Any, ...]:
    """The items table's row for a new item."""
    first = initial_status(spec.kind)
    return (
        spec.target_index,
        spec.object_id,
        spec.upn,
        spec.display_name,
        spec.action,
        spec.position,
        spec.kind,
        spec.summary,
        spec.note,
        spec.ticket,
        int(spec.repeatable),
        str(first),
        str(first),
        now,
    )


def item_of(row: Sequence[Any]) -> Item:
    """An Item from a row of ITEM_COLUMNS."""
    return Item(
        id=row[0],
        target_index=row[1],
        object_id=row[2],
        upn=row[3],
        display_name=row[4],
        action=row[5],
        position=row[6],
        kind=row[7],
        summary=row[8],
        note=row[9],
        ticket=row[10],
        repeatable=bool(row[11]),
        initial_status=ItemStatus(row[12]),
        status=ItemStatus(row[13]),
        reason=row[14],
        attempts=row[15],
        http_status=row[16],
        error_code=row[17],
        error_message=row[18],
        request_id=row[19],
        started=unstamp(row[20]),
        finished=unstamp(row[21]),
        verified=None if row[22] is None else bool(row[22]),
        verified_at=unstamp(row[23]),
        secret_ref=row[24],
        detail=json.loads(row[25]),
        updated=time_of(row[26]),
    )


def step_of(row: Sequence[Any]) -> StepRecord:
    """A StepRecord from a row of STEP_COLUMNS."""
    return StepRecord(
        item_id=row[0],
        key=row[1],
        label=row[2],
        status=StepStatus(row[3]),
        attempts=row[4],
        resend_ok=bool(row[5]),
        http_status=row[6],
        error_code=row[7],
        error_message=row[8],
        request_id=row[9],
        client_request_id=row[10],
        intent_time=unstamp(row[11]),
        intent_time_source=None if row[12] is None else TimeSource(row[12]),
        location=row[13],
        created=time_of(row[14]),
        updated=time_of(row[15]),
        finished=unstamp(row[16]),
    )


def orphans(con: Connection) -> list[Orphan]:
    """Steps in `intent` (the index on steps.status makes this fast at any size)."""
    rows = con.execute(
        "SELECT s.item_id, s.key, i.object_id, i.upn, i.action, i.repeatable, "
        "s.client_request_id, s.intent_time, s.intent_time_source, s.location, i.secret_ref, "
        "s.resend_ok FROM steps AS s JOIN items AS i ON i.id = s.item_id "
        "WHERE s.status = 'intent' ORDER BY s.item_id, s.seq"
    ).fetchall()
    return [
        Orphan(
            item_id=r[0],
            step_key=r[1],
            object_id=r[2],
            upn=r[3],
            action=r[4],
            repeatable=bool(r[5]),
            intent_id=r[6],
            intent_time=unstamp(r[7]),
            intent_time_source=None if r[8] is None else TimeSource(r[8]),
            location=r[9],
            secret_ref=r[10],
            resend_ok=bool(r[11]),
        )
        for r in rows
    ]


def add_transition(
    con: Connection,
    item_id: int,
    step_key: str | None,
    old: str,
    new: str,
    now: dt.datetime,
    detail: Mapping[str, Any],
) -> None:
    """Append one row to the transitions table."""
    con.execute(
        "INSERT INTO transitions (item_id, step_key, old, new, time, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (item_id, step_key, str(old), str(new), stamp(now), to_json(detail)),
    )


def add_event(con: Connection, now: dt.datetime, kind: str, detail: Mapping[str, Any]) -> None:
    """Append one row to the events table."""
    con.execute(
        "INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)",
        (stamp(now), kind, to_json(detail)),
    )

"""`RUN_DIR/secrets.csv`: the one place a temporary password or access pass is written.

The file is created exclusively (`O_CREAT|O_EXCL`, mode 0600 from creation, never widened
by a later chmod) in a run folder that only its owner can enter (0700), and the folder is
fsynced after the creation. Every row is written with one append and fsynced before `write`
returns: a password the runner generates is on disk before the request that sets it is
sent, and a pass Graph returns is on disk before anything else happens.

Columns: upn, object_id, action, kind (`temporary_password` | `temporary_access_pass`),
value, created, valid_until, item (the journal's item reference), secret_ref (what the
journal keeps instead of the secret: `ITEM:ROW`), check (a hash of the row's other cells:
a row cut short by a crash never passes for a shorter password). Text cells other than the
value are neutralised against spreadsheet formulas (a leading `= + - @ tab CR` gets a `'`);
generated passwords never start with one of those, so the value is never altered.

Values read back (on resume: is the password or pass in hand?) are registered for redaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from runner import crash
from runner.errors import StorageError
from runner.secrets import register_secret

FILE_NAME = "secrets.csv"
COLUMNS: tuple[str, ...] = (
    "upn",
    "object_id",
    "action",
    "kind",
    "value",
    "created",
    "valid_until",
    "item",
    "secret_ref",
    "check",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_VALUE = COLUMNS.index("value")


class SecretKind(StrEnum):
    """What a secret is."""

    TEMPORARY_PASSWORD = "temporary_password"  # noqa: S105 - a kind of secret, not one
    TEMPORARY_ACCESS_PASS = "temporary_access_pass"  # noqa: S105 - a kind of secret, not one


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretRecord:
    """One row of secrets.csv; `value` never appears in repr."""

    secret_ref: str
    item_ref: str
    upn: str
    object_id: str
    action: str
    kind: SecretKind
    value: str = field(repr=False)
    created: dt.datetime
    valid_until: dt.datetime | None = None


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's leading quote)."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _restore(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES) else cell


def _check(cells: list[str]) -> str:
    return hashlib.sha256("\x1f".join(cells).encode("utf-8")).hexdigest()[:16]


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SecretsFile:
    """The run's secrets file; created on `create()` or on the first `write`."""

    def __init__(self, run_dir: Path, *, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.run_dir = run_dir
        self.path = run_dir / FILE_NAME
        self._clock = clock
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._closer: Callable[[], object] = lambda: None
        self._records: list[SecretRecord] | None = None  # valid rows, read lazily
        self._rows = 0  # data rows on disk, torn ones included (numbers secret_refs)
        self._torn_tail = False  # the file does not end with a newline (a cut row)
        self._header_rest = b""  # what a crash while creating the file left of its header

    def __repr__(self) -> str:
        return f"SecretsFile({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether the file is there."""
        return self.path.exists()

    def create(self) -> None:
        """Create the file exclusively, mode 0600, with its header; StorageError if it exists."""
        with self._mutex:
            self._create()

    def write(
        self,
        *,
        item_ref: str,
        upn: str,
        object_id: str,
        action: str,
        kind: SecretKind,
        value: str,
        valid_until: dt.datetime | None = None,
    ) -> SecretRecord:
        """Append one secret and fsync it before returning; its record carries `secret_ref`."""
        if not value or any(ch in value for ch in "\r\n\x00"):
            msg = "a secret must be non-empty text on one line"
            raise ValueError(msg)
        for name, cell in (("upn", upn), ("object_id", object_id), ("item_ref", item_ref)):
            if any(ch in cell for ch in "\r\n\x00"):
                msg = f"secrets.csv {name} must be on one line"
                raise ValueError(msg)
        register_secret(value)
        with self._mutex:
            if not self.path.exists():
                self._create()
            self._load()
            self._open_for_append()
            record = SecretRecord(
                secret_ref=f"{item_ref}:{self._rows + 1}",
                item_ref=item_ref,
                upn=upn,
                object_id=object_id,
                action=action,
                kind=SecretKind(kind),
                value=value,
                created=self._clock(),
                valid_until=valid_until,
            )
            cells = [
                neutralise(upn),
                neutralise(object_id),
                neutralise(action),
                str(record.kind),
                value,
                _time(record.created),
                _time(valid_until) if valid_until else "",
                neutralise(item_ref),
                neutralise(record.secret_ref),
            ]
            data = ("\n" if self._torn_tail else "") + _csv_line([*cells, _check(cells)])
            if self._header_rest:
                self._append(self._header_rest, split=False)
                self._header_rest = b""
            self._append(data.encode("utf-8"), split=True)
            self._torn_tail = False
            self._rows += 1
            assert self._records is not None  # loaded above
            self._records.append(record)
            return record

    def records(self) -> list[SecretRecord]:
        """Every complete row, in file order (values registered for redaction)."""
        with self._mutex:
            return list(self._load())

    def lookup(self, item_ref: str) -> SecretRecord | None:
        """The latest secret written for an item, or None."""
        found = [r for r in self.records() if r.item_ref == item_ref]
        return found[-1] if found else None

    def has(self, item_ref: str) -> bool:
        """Whether a secret for this item is in hand (complete and on disk)."""
        return self.lookup(item_ref) is not None

    def get(self, secret_ref: str) -> SecretRecord | None:
        """The row a journal's `secret_ref` names, or None."""
        return next((r for r in self.records() if r.secret_ref == secret_ref), None)

    def close(self) -> None:
        """Close the file (writes are already on disk)."""
        with self._mutex:
            if self._fd is not None:
                self._closer()
                self._fd = None

    def __enter__(self) -> SecretsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- disk ------------------------------------------------------------------------------

    def _create(self) -> None:
        self._check_folder()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            msg = f"{self.path}: already exists; a secrets file is never overwritten"
            raise StorageError(msg) from None
        except OSError as exc:
            msg = self._failure("create", exc)
            raise StorageError(msg) from None
        self._adopt(fd)
        self._records, self._rows, self._torn_tail = [], 0, False
        self._append(_csv_line(list(COLUMNS)).encode("utf-8"), split=False)
        try:
            folder = os.open(self.run_dir, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            msg = self._failure("sync the run folder after creating", exc)
            raise StorageError(msg) from None

    def _adopt(self, fd: int) -> None:
        """Keep `fd`, closed by `close()` or, if the caller forgets, when this object goes."""
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)

    def _check_folder(self) -> None:
        try:
            mode = self.run_dir.stat().st_mode & 0o777
        except OSError as exc:
            msg = self._failure("find the run folder of", exc)
            raise StorageError(msg) from None
        if mode & 0o077:
            msg = (
                f"{self.run_dir}: the run folder is open to other users (mode {mode:04o}); "
                "secrets are written only in a folder of mode 0700"
            )
            raise StorageError(msg)

    def _open_for_append(self) -> None:
        if self._fd is not None:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags)
            info = os.fstat(fd)
        except OSError as exc:
            msg = self._failure("open", exc)
            raise StorageError(msg) from None
        if info.st_mode & 0o077 or info.st_uid != os.geteuid():
            os.close(fd)
            msg = (
                f"{self.path}: mode {info.st_mode & 0o777:04o} or owner is not this user's "
                "0600; refusing to add secrets to it"
            )
            raise StorageError(msg)
        self._adopt(fd)

    def _append(self, data: bytes, *, split: bool) -> None:
        assert self._fd is not None  # opened by the caller
        try:
            if split:
                # The crash hook cuts a row in half, as a crash in the middle of a write would.
                half = len(data) // 2
                _write_all(self._fd, data[:half])
                crash.crash_point("mid_secrets_write")
                _write_all(self._fd, data[half:])
            else:
                _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            msg = self._failure("write", exc)
            raise StorageError(msg) from None

    def _load(self) -> list[SecretRecord]:
        if self._records is not None:
            return self._records
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._records = []
            return self._records
        except OSError as exc:
            msg = self._failure("read", exc)
            raise StorageError(msg) from None
        header = _csv_line(list(COLUMNS)).encode("utf-8")
        if len(raw) < len(header) and header.startswith(raw):
            # A crash while the file was being created, before its header was whole: no secret
            # was ever written to it; the rest of the header goes before the first row.
            self._header_rest = header[len(raw) :]
            self._records, self._rows, self._torn_tail = [], 0, False
            return self._records
        self._torn_tail = bool(raw) and not raw.endswith(b"\n")
        # One row per line (no cell holds a line break), parsed line by line: a row a crash
        # cut short inside a quoted cell cannot swallow the rows after it.
        text = raw.decode("utf-8", errors="replace")
        rows = [next(csv.reader([line]), []) for line in text.split("\n") if line]
        if not rows or tuple(rows[0]) != COLUMNS:
            msg = f"{self.path}: not an entra-bulk secrets file (unexpected header)"
            raise StorageError(msg)
        self._rows = len(rows) - 1
        self._records = [r for r in (_record(row) for row in rows[1:]) if r is not None]
        return self._records

    def _failure(self, what: str, exc: OSError) -> str:
        return f"{self.path}: cannot {what} the secrets file: {exc.strerror}"


def _record(row: list[str]) -> SecretRecord | None:
    """A complete row as a record; None for a row a crash cut short (its check fails)."""
    if len(row) != len(COLUMNS) or _check(row[:-1]) != row[-1]:
        return None
    value = row[_VALUE]
    register_secret(value)
    until = _restore(row[6])
    return SecretRecord(
        secret_ref=_restore(row[8]),
        item_ref=_restore(row[7]),
        upn=_restore(row[0]),
        object_id=_restore(row[1]),
        action=_restore(row[2]),
        kind=SecretKind(row[3]),
        value=value,
        created=dt.datetime.fromisoformat(row[5].replace("Z", "+00:00")),
        valid_until=dt.datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
    )


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

"""The run's journal: `RUN_DIR/journal.sqlite`, the one record of what `apply` did.

SQLite in WAL mode with `synchronous=FULL` (a commit survives power loss), an autocommit
connection (`isolation_level=None`) and an explicit `BEGIN IMMEDIATE … COMMIT` around every
change. Any SQLite or OS failure becomes `StorageError` (exit 6) naming the file and what
failed; a move the state machine (`runner.runstate`) does not list raises
`IllegalTransitionError` (a bug, exit 70).

The protocol (reliability.md §1.3): `record_intents` returns only after its COMMIT, and only
then may the request be sent; `record_outcomes` records how it ended, in one transaction; on
resume `recover_orphans` turns every intent without an outcome into `unknown` (or back into
`planned` when its last response proved it was not executed) before anything is sent.

Every write needs the run lock (`acquire_lock`, or `take_over_if_dead` on resume), checked
inside each write transaction, so a process whose lock was force-unlocked stops at once.
Only this module imports sqlite3; `journalrows`, `journalmoves` and `runlock` work on the
connection it hands them. No secret is ever stored: an item keeps only `secret_ref`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runner import crash, journalmoves, runlock
from runner.errors import RefusedError, StorageError
from runner.journalrows import (
    APPLICATION_ID,
    HEADER_COLUMNS,
    INSERT_HEADER,
    INSERT_ITEM,
    ITEM_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    STEP_COLUMNS,
    add_event,
    clean,
    event_of,
    header_of,
    header_row,
    item_of,
    item_row,
    orphans,
    step_of,
    transition_of,
)
from runner.runlock import LockedError, LockLostError, NotLockedError
from runner.runstate import (
    DIRECT_STATUSES,
    Attempt,
    Event,
    IllegalTransitionError,
    Intent,
    Item,
    ItemSpec,
    ItemStatus,
    LockInfo,
    Orphan,
    Outcome,
    RunHeader,
    StepRecord,
    Transition,
    Verification,
    stamp,
    unstamp,
)
from runner.secrets import redact

__all__ = [
    "JOURNAL_NAME",
    "IllegalTransitionError",
    "Journal",
    "LockLostError",
    "LockedError",
    "NotLockedError",
]

JOURNAL_NAME = "journal.sqlite"
PAGE_SIZE = 1000  # items read per query when streaming

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default clock."""
    return dt.datetime.now(dt.UTC)


class Journal:
    """One run's journal. Make it with `Journal.create` or `Journal.open`; thread-safe."""

    def __init__(self, path: Path, connection: sqlite3.Connection, *, clock: Clock) -> None:
        self.path = path
        self._con = connection
        self._clock = clock
        self._mutex = threading.RLock()
        self._pid = os.getpid()
        self._lock: LockInfo | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, run_dir: Path, header: RunHeader, items: Iterable[ItemSpec], *, clock: Clock = utc_now
    ) -> Journal:
        """A new journal in `run_dir` with the run header and every item, in one transaction."""
        path = run_dir / JOURNAL_NAME
        if path.exists():
            msg = f"{path}: a journal already exists here; resume it with --resume"
            raise StorageError(msg)
        journal = cls(path, _connect(path, create=True), clock=clock)
        now = stamp(clock())
        with journal._write("create the journal", need_lock=False) as con:
            for statement in SCHEMA:
                con.execute(statement)
            con.execute(INSERT_HEADER, header_row(header))
            con.executemany(INSERT_ITEM, (item_row(spec, now) for spec in items))
        _fsync_dir(run_dir, path)
        return journal

    @classmethod
    def open(cls, run_dir: Path, *, clock: Clock = utc_now) -> Journal:
        """The existing journal of `run_dir` (StorageError when missing or not a journal)."""
        path = run_dir / JOURNAL_NAME
        if not path.is_file():
            msg = f"{path}: no journal here (is {run_dir} a run folder?)"
            raise StorageError(msg)
        con = _connect(path, create=False)
        journal = cls(path, con, clock=clock)
        with journal._read("open the journal"):
            app = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
            complete = "header" in tables and con.execute("SELECT 1 FROM header").fetchone()
        problem = None
        if app != APPLICATION_ID or not complete:
            problem = "not an entra-bulk journal, or its creation never finished"
        elif version != SCHEMA_VERSION:
            problem = f"journal format {version}; this version reads format {SCHEMA_VERSION}"
        if problem:
            con.close()
            msg = f"{path}: {problem}"
            raise StorageError(msg)
        return journal

    def close(self) -> None:
        """Release the lock if this object holds it, and close the connection."""
        with self._mutex:
            if self._lock is not None:
                with contextlib.suppress(StorageError):
                    self.release_lock()
            self._con.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # --- the run lock ----------------------------------------------------------------------

    @property
    def lock(self) -> LockInfo | None:
        """The lock this object holds, if any."""
        return self._lock

    def lock_holder(self) -> LockInfo | None:
        """Whoever holds the lock now (any process, any host), or None."""
        with self._read("read the lock"):
            return runlock.holder(self._con)

    def acquire_lock(self, *, command: str) -> LockInfo:
        """Take the run lock; LockedError naming the holder if anyone holds it."""
        with self._write("take the run lock", need_lock=False) as con:
            holder = runlock.holder(con)
            if holder is not None:
                raise runlock.locked(self.path.parent, holder)
            self._lock = runlock.install(
                con, now=self._clock(), command=command, event="lock_acquired", detail={}
            )
            return self._lock

    def take_over_if_dead(self, *, command: str) -> LockInfo | None:
        """Take the lock, taking over a lock whose process is dead on this host.

        Returns the old holder when one was taken over (the caller says so), None when the
        run was not locked. LockedError when the holder is alive, or on another host (whose
        processes this machine cannot see: `force_unlock` with its lock id clears it).
        """
        with self._write("take over the run lock", need_lock=False) as con:
            holder = runlock.holder(con)
            detail: dict[str, Any] = {}
            if holder is not None:
                if runlock.alive(holder) is not False:
                    raise runlock.locked(self.path.parent, holder)
                runlock.clear(con)
                detail = {"old": runlock.as_json(holder)}
            self._lock = runlock.install(
                con,
                now=self._clock(),
                command=command,
                event="lock_takeover" if holder else "lock_acquired",
                detail=detail,
            )
            return holder

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Clear the lock only if its id is `lock_id` (a nonce, as in Terraform); RefusedError
        otherwise. Returns the holder that was cleared; the caller then takes the lock."""
        with self._write("clear the run lock", need_lock=False) as con:
            holder = runlock.holder(con)
            if holder is None:
                msg = f"{self.path.parent}: the run is not locked; nothing to force-unlock"
                raise RefusedError(msg)
            if holder.lock_id != lock_id.strip():
                msg = (
                    f"{self.path.parent}: lock id {lock_id!r} does not match the lock held by "
                    f"pid {holder.pid} on host {holder.host} since {stamp(holder.started)}; "
                    "nothing was unlocked"
                )
                raise RefusedError(msg, hint="`entra-bulk status RUN_DIR` shows the lock id")
            runlock.clear(con)
            add_event(con, self._clock(), "lock_forced", {"old": runlock.as_json(holder)})
            runlock.HELD_LOCKS.discard(holder.lock_id)
            if self._lock is not None and self._lock.lock_id == holder.lock_id:
                self._lock = None
            return holder

    def release_lock(self) -> bool:
        """Release the lock this object holds; False if it no longer held it."""
        mine = self._lock
        if mine is None:
            return False
        with self._write("release the run lock", need_lock=False) as con:
            self._lock = None
            runlock.HELD_LOCKS.discard(mine.lock_id)
            holder = runlock.holder(con)
            if holder is None or holder.lock_id != mine.lock_id:
                return False
            runlock.clear(con)
            add_event(con, self._clock(), "lock_released", {"lock_id": mine.lock_id})
            return True

    # --- writes: the protocol --------------------------------------------------------------

    def record_intents(self, intents: Sequence[Intent]) -> None:
        """Commit the intents of requests about to be sent; returns only after COMMIT.

        A step moves planned|unknown → intent, or intent → intent when its last response
        proved it was not executed (`record_not_executed`). An unknown step of an action
        that is not repeatable is re-sent only with `reissue=True` (after a read-back showed
        it was not done). A planned step of an item with unknown steps waits for them.
        """
        if not intents:
            return
        now = self._clock()
        with self._write("record intents") as con:
            for intent in intents:
                journalmoves.intent(con, intent, now)
            crash.crash_point("before_intent_commit")
        crash.crash_point("after_intent_commit")

    def record_intent(self, intent: Intent) -> None:
        """`record_intents` for one request."""
        self.record_intents((intent,))

    def record_not_executed(self, attempts: Sequence[Attempt]) -> None:
        """Responses proving their requests were not executed (429, 503 + Retry-After, 401,
        an outer 424): each step stays `intent` and may be re-sent after a new intent."""
        now = self._clock()
        with self._write("record responses (not executed)") as con:
            for attempt in attempts:
                journalmoves.attempt(con, attempt, resend_ok=True, now=now)

    def record_pending(self, attempts: Sequence[Attempt]) -> None:
        """Responses accepting a request for later (202 + Location): each step stays `intent`
        with its Location kept, to be polled (never re-sent) until it ends."""
        for attempt in attempts:
            if not attempt.location:
                msg = f"item {attempt.item_id} step {attempt.step_key!r}: no Location to keep"
                raise ValueError(msg)
        now = self._clock()
        with self._write("record pending operations") as con:
            for attempt in attempts:
                journalmoves.attempt(con, attempt, resend_ok=False, now=now)

    def withdraw_intents(self, steps: Sequence[tuple[int, str]], *, reason: str) -> None:
        """Steps whose requests were never sent (or proved not executed) go back to
        `planned`; an item none of whose steps left `planned` goes back too."""
        now = self._clock()
        with self._write("withdraw intents") as con:
            for item_id, key in steps:
                journalmoves.withdraw(con, item_id, key, now, redact(reason))

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Record how steps ended (or were reconciled), in one transaction.

        A step moves intent → succeeded|failed|unknown, or unknown → succeeded|failed
        (reconciled by reading state back). `finish_item` ends the item: its steps still
        `planned` become `skipped` and its status is derived from its steps.
        """
        if not outcomes:
            return
        now = self._clock()
        with self._write("record outcomes") as con:
            for outcome in outcomes:
                journalmoves.outcome(con, outcome, now)
        crash.crash_point("after_outcome_commit")

    def record_outcome(self, outcome: Outcome) -> None:
        """`record_outcomes` for one step."""
        self.record_outcomes((outcome,))

    def finish_item(self, item_id: int, *, reason: str | None = None) -> ItemStatus:
        """End an item whose remaining steps will not be sent; returns its derived status."""
        now = self._clock()
        with self._write("finish an item") as con:
            return journalmoves.finish(con, item_id, now, reason)

    def mark_unknown(self, steps: Sequence[tuple[int, str]], *, reason: str) -> None:
        """Steps in `intent` whose requests may have been executed (5xx, timeout, reset,
        lost response, missing batch item) become `unknown`, and so do their items."""
        now = self._clock()
        with self._write("mark outcomes unknown") as con:
            for item_id, key in steps:
                journalmoves.unknown(con, item_id, key, now, reason)

    def recover_orphans(self, *, reason: str = "no outcome recorded (resumed)") -> list[Orphan]:
        """On resume, before anything is sent: every orphaned intent becomes `unknown`, except
        those whose last response proved them not executed, which go back to `planned`.
        Returns the orphans as they were found."""
        now = self._clock()
        with self._write("recover orphaned intents") as con:
            found = orphans(con)
            for orphan in found:
                if orphan.resend_ok:
                    journalmoves.withdraw(
                        con, orphan.item_id, orphan.step_key, now, "last response: not executed"
                    )
                else:
                    journalmoves.unknown(con, orphan.item_id, orphan.step_key, now, reason)
        return found

    def set_status(
        self,
        item_ids: Iterable[int],
        status: ItemStatus,
        *,
        reason: str,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Move items that need no request: planned → noop|drifted|skipped|refused|failed,
        manual → confirmed. Their steps still `planned` become `skipped`."""
        if status not in DIRECT_STATUSES:
            msg = f"set_status cannot set {status}: use the intent and outcome methods"
            raise IllegalTransitionError(msg)
        now = self._clock()
        text = redact(reason)
        extra = clean(detail)
        facts = (http_status, error_code, error_message)
        with self._write(f"mark items {status}") as con:
            for item_id in item_ids:
                journalmoves.set_direct(
                    con, item_id, status, now, reason=text, facts=facts, detail=extra
                )

    def confirm(self, item_ids: Iterable[int], *, by: str, note: str = "") -> None:
        """Record that an operator did manual items' portal steps: manual → confirmed."""
        self.set_status(
            item_ids, ItemStatus.CONFIRMED, reason=note or "confirmed", detail={"by": by}
        )

    def record_verifications(self, results: Sequence[Verification]) -> int:
        """Record read-backs: a verified `succeeded` item becomes `verified`; otherwise (and
        for `noop` items) only the flag and time are kept. Items already `verified` are left
        as they are. Returns how many items were updated."""
        now = self._clock()
        changed = 0
        with self._write("record verification") as con:
            for result in results:
                detail = clean(result.detail)
                changed += journalmoves.verify(con, result.item_id, result.verified, now, detail)
        return changed

    def record_event(self, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """Add to the timeline (429, pause, rate, halt, canary, ...). No lock needed."""
        with self._write(f"record a {kind} event", need_lock=False) as con:
            add_event(con, self._clock(), kind, clean(detail))

    # --- reads -----------------------------------------------------------------------------

    def header(self, *, content: bool = False) -> RunHeader:
        """The run header; the frozen plan's `content` only when asked (it can be large)."""
        columns = HEADER_COLUMNS.format(content="content" if content else "'{}'")
        with self._read("read the header"):
            row = self._con.execute(f"SELECT {columns} FROM header").fetchone()  # noqa: S608 - fixed column names
        return header_of(row)

    def item(self, item_id: int) -> Item:
        """One item (LookupError when there is none with that id)."""
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE id = ?"  # noqa: S608 - fixed column names
        with self._read("read an item"):
            row = self._con.execute(sql, (item_id,)).fetchone()
        if row is None:
            msg = f"no item {item_id} in {self.path}"
            raise LookupError(msg)
        return item_of(row)

    def iter_items(
        self,
        *,
        status: ItemStatus | Iterable[ItemStatus] | None = None,
        object_id: str | None = None,
    ) -> Iterator[Item]:
        """Items in plan order, read a page at a time (flat memory for large runs)."""
        where = ["id > ?"]
        args: list[str] = []
        if status is not None:
            wanted = [status] if isinstance(status, ItemStatus) else list(status)
            where.append(f"status IN ({', '.join('?' for _ in wanted)})")
            args.extend(str(s) for s in wanted)
        if object_id is not None:
            where.append("object_id = ?")
            args.append(object_id)
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"  # noqa: S608 - fixed columns, placeholders only
        last = 0
        while True:
            with self._read("read items"):
                rows = self._con.execute(sql, (last, *args, PAGE_SIZE)).fetchall()
            yield from (item_of(row) for row in rows)
            if len(rows) < PAGE_SIZE:
                return
            last = rows[-1][0]

    def items(
        self,
        *,
        status: ItemStatus | Iterable[ItemStatus] | None = None,
        object_id: str | None = None,
    ) -> list[Item]:
        """Items in plan order, filtered by status and object id."""
        return list(self.iter_items(status=status, object_id=object_id))

    def counts(self) -> dict[ItemStatus, int]:
        """Items per status (every status, zeros included)."""
        with self._read("count items"):
            rows = self._con.execute("SELECT status, count(*) FROM items GROUP BY status")
            found = {ItemStatus(status): count for status, count in rows}
        return {status: found.get(status, 0) for status in ItemStatus}

    def steps(self, item_id: int | None = None) -> list[StepRecord]:
        """The steps of one item, or of every item (in item order)."""
        sql = f"SELECT {STEP_COLUMNS} FROM steps"  # noqa: S608 - fixed column names
        with self._read("read steps"):
            if item_id is None:
                rows = self._con.execute(sql + " ORDER BY item_id, seq").fetchall()
            else:
                rows = self._con.execute(
                    sql + " WHERE item_id = ? ORDER BY seq", (item_id,)
                ).fetchall()
        return [step_of(row) for row in rows]

    def orphaned_intents(self) -> list[Orphan]:
        """Steps in `intent` with no outcome (after a crash: what `recover_orphans` handles)."""
        with self._read("find orphaned intents"):
            return orphans(self._con)

    def transitions(self, item_id: int | None = None) -> list[Transition]:
        """Every recorded status change, in order (of one item, or of all)."""
        sql = "SELECT seq, item_id, step_key, old, new, time, detail FROM transitions"
        with self._read("read transitions"):
            if item_id is None:
                rows = self._con.execute(sql + " ORDER BY seq").fetchall()
            else:
                rows = self._con.execute(
                    sql + " WHERE item_id = ? ORDER BY seq", (item_id,)
                ).fetchall()
        return [transition_of(row) for row in rows]

    def last_change(self, start: dt.datetime, end: dt.datetime | None) -> dt.datetime | None:
        """The latest item change (a status move, an item finished, a read-back) at or after
        `start` and before `end` (no bound when None); None when there was none."""
        bound = "9999"  # after every stamp
        sql = (
            "SELECT max(moment) FROM ("
            "SELECT max(time) AS moment FROM transitions WHERE time >= ?1 AND time < ?2 "
            "UNION ALL SELECT max(finished) FROM items WHERE finished >= ?1 AND finished < ?2 "
            "UNION ALL SELECT max(verified_at) FROM items "
            "WHERE verified_at >= ?1 AND verified_at < ?2)"
        )
        with self._read("read the last change"):
            args = (stamp(start), bound if end is None else stamp(end))
            (moment,) = self._con.execute(sql, args).fetchone()
        return unstamp(moment)

    def events(self, kind: str | None = None) -> list[Event]:
        """The timeline, in order (of one kind, or all)."""
        sql = "SELECT seq, time, kind, detail FROM events"
        with self._read("read events"):
            if kind is None:
                rows = self._con.execute(sql + " ORDER BY seq").fetchall()
            else:
                rows = self._con.execute(sql + " WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
        return [event_of(row) for row in rows]

    def integrity_check(self) -> tuple[str, ...]:
        """`PRAGMA integrity_check`: `("ok",)` when the file is sound."""
        with self._read("check integrity"):
            return tuple(row[0] for row in self._con.execute("PRAGMA integrity_check"))

    # --- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, what: str, *, need_lock: bool = True) -> Iterator[sqlite3.Connection]:
        self._check_process()
        with self._mutex:
            con = self._con
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._storage(what, exc) from None
            try:
                if need_lock:
                    self._check_lock(con)
                yield con
            except (sqlite3.Error, OSError) as exc:
                _rollback(con)
                raise self._storage(what, exc) from None
            except BaseException:
                _rollback(con)
                raise
            try:
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(con)
                raise self._storage(what, exc) from None

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[None]:
        self._check_process()
        with self._mutex:
            try:
                yield
            except (sqlite3.Error, OSError) as exc:
                raise self._storage(what, exc) from None

    def _storage(self, what: str, exc: BaseException) -> StorageError:
        detail = redact(str(exc)) or type(exc).__name__
        return StorageError(
            f"{self.path}: cannot {what}: {detail}",
            hint="nothing is sent without a committed intent; fix the disk, then --resume",
        )

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            msg = f"{self.path}: a journal connection cannot be used across fork(); open it again"
            raise StorageError(msg)

    def _check_lock(self, con: sqlite3.Connection) -> None:
        mine = self._lock
        if mine is None:
            msg = f"{self.path}: journal writes need the run lock; call acquire_lock() first"
            raise NotLockedError(msg)
        holder = runlock.holder(con)
        if holder is None or holder.lock_id != mine.lock_id:
            self._lock = None
            runlock.HELD_LOCKS.discard(mine.lock_id)
            raise runlock.lost(self.path.parent, mine, holder)


def holder_alive(holder: LockInfo) -> bool | None:
    """Whether a lock's process still runs: None when it is on another host (unknowable)."""
    return runlock.alive(holder)


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    uri = f"file:{quote(str(path))}?mode={'rwc' if create else 'rw'}"
    try:
        con = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        msg = f"{path}: cannot open the journal: {exc}"
        raise StorageError(msg) from None
    if str(mode).lower() != "wal":
        con.close()
        msg = f"{path}: cannot use WAL mode here (got {mode!r}); keep run folders on a local disk"
        raise StorageError(msg)
    return con


def _rollback(con: sqlite3.Connection) -> None:
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def _fsync_dir(folder: Path, path: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        msg = f"{path}: cannot sync the run folder: {exc.strerror}"
        raise StorageError(msg) from None

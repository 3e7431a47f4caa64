"""The run lock: one row of the journal naming the one process allowed to write.

The row holds a lock id (a UUID used as a nonce, as Terraform's force-unlock does), the
holder's pid, host, start time and command, and the process's start time in clock ticks
(Linux), which tells a live holder from a new process that got the same pid. Whether a
holder is alive can only be known on its own host; elsewhere the operator clears the lock
with its id.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from runner.errors import RefusedError
from runner.journalrows import Connection, add_event, time_of
from runner.runstate import LockInfo, stamp

# Lock ids held by journals of this process: a lock naming our own pid is alive only if it is
# one of these (a previous process with the same pid, as in a container, is dead).
HELD_LOCKS: set[str] = set()


class LockedError(RefusedError):
    """Another process holds the run lock (exit 3): a second writer is refused."""


class LockLostError(RefusedError):
    """This process's lock was force-unlocked or taken over: it must stop writing."""


class NotLockedError(RuntimeError):
    """A journal write without holding the run lock: a bug in the caller."""


def holder(con: Connection) -> LockInfo | None:
    """The lock row, or None when the run is not locked."""
    row = con.execute("SELECT lock_id, pid, host, started, command, pid_start FROM lock").fetchone()
    if row is None:
        return None
    return LockInfo(
        lock_id=row[0],
        pid=row[1],
        host=row[2],
        started=time_of(row[3]),
        command=row[4],
        pid_start=row[5],
    )


def install(
    con: Connection, *, now: dt.datetime, command: str, event: str, detail: dict[str, Any]
) -> LockInfo:
    """Write a new lock row for this process (the table must be empty) and log the event."""
    pid = os.getpid()
    info = LockInfo(
        lock_id=str(uuid.uuid4()),
        pid=pid,
        host=socket.gethostname(),
        started=now,
        command=command,
        pid_start=_proc_start(pid),
    )
    con.execute(
        "INSERT INTO lock VALUES (1, ?, ?, ?, ?, ?, ?)",
        (info.lock_id, pid, info.host, stamp(now), command, info.pid_start),
    )
    add_event(con, now, event, {**detail, "new": as_json(info)})
    HELD_LOCKS.add(info.lock_id)
    return info


def clear(con: Connection) -> None:
    """Delete the lock row."""
    con.execute("DELETE FROM lock")


def as_json(info: LockInfo) -> dict[str, Any]:
    """The lock for an event's detail."""
    return {
        "lock_id": info.lock_id,
        "pid": info.pid,
        "host": info.host,
        "started": stamp(info.started),
        "command": info.command,
    }


def locked(run_dir: Path, info: LockInfo) -> LockedError:
    """The refusal a second writer gets, naming the holder and the ways forward."""
    return LockedError(
        f"{run_dir}: the run is locked by {info.describe()}, running {info.command!r}",
        hint=(
            f"wait for it to finish; if that process is dead, `entra-bulk apply --resume "
            f"{run_dir}` on host {info.host} takes the lock over, and from another host "
            f"`--force-unlock {info.lock_id}` clears it"
        ),
    )


def lost(run_dir: Path, mine: LockInfo, now_held: LockInfo | None) -> LockLostError:
    """The error a writer gets once its lock is gone."""
    state = f"held by {now_held.describe()}" if now_held else "not held by anyone"
    return LockLostError(
        f"{run_dir}: this process lost the run lock (lock id {mine.lock_id}): it was "
        f"force-unlocked or taken over and is now {state}; stopping"
    )


def alive(info: LockInfo) -> bool | None:
    """Whether the holder's process still runs; None when it is on another host."""
    if info.host != socket.gethostname():
        return None
    if info.pid == os.getpid():
        return info.lock_id in HELD_LOCKS
    if info.pid <= 0:
        return False  # never signal 0 or -1: they name groups of processes
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return True  # cannot tell: assume alive, the safe side
    stat = _proc_stat(info.pid)
    if stat is None:
        return True
    state, start = stat
    if state in {"Z", "X", "x"}:
        return False  # a zombie: dead, not yet reaped by its parent
    return not (info.pid_start is not None and start != info.pid_start)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc, where there is one."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20:  # /proc/PID/stat has at least 22 fields; the 22nd is the start
        return None
    return fields[0], fields[19]


def _proc_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]

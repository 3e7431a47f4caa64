"""The run lock: one writer, refusals naming the holder, takeover of dead holders, force-unlock."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from runner import runlock
from runner.errors import ExitCode, RefusedError
from runner.journal import JOURNAL_NAME, Journal, LockedError, LockLostError, holder_alive
from runner.runstate import ItemStatus, stamp
from tests.journal_support import intent, make_run_dir, new_journal, spec

ROOT = Path(__file__).resolve().parent.parent

HOLDER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from runner.journal import Journal

    journal = Journal.open(Path(sys.argv[1]))
    info = journal.acquire_lock(command="apply plan.json")
    print(os.getpid(), info.lock_id, flush=True)
    os._exit(0)  # dies holding the lock, as after a SIGKILL
    """
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder with a two-item journal, unlocked."""
    path = make_run_dir(tmp_path)
    new_journal(path, [spec(0), spec(1)], lock=False).close()
    return path


def _edit_lock(run_dir: Path, **columns: object) -> None:
    """Change the lock row behind the journal's back (another host, a reused pid)."""
    con = sqlite3.connect(run_dir / JOURNAL_NAME)
    for name, value in columns.items():
        con.execute(f"UPDATE lock SET {name} = ?", (value,))  # noqa: S608 - test column names
    con.commit()
    con.close()


def _dead_holder(run_dir: Path) -> tuple[int, str]:
    """A process that took the lock and died (reaped): its pid and lock id."""
    result = subprocess.run(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pid, lock_id = result.stdout.split()
    return int(pid), lock_id


def _abandon_lock(run_dir: Path, **columns: object) -> None:
    """Leave a lock row behind, as a process that died would, then edit it."""
    with Journal.open(run_dir) as journal:
        info = journal.acquire_lock(command="apply")
        journal._lock = None  # forget it: close() must not release it
        runlock.HELD_LOCKS.discard(info.lock_id)
    _edit_lock(run_dir, **columns)


def test_second_writer_is_refused_naming_the_holder(run_dir: Path) -> None:
    """A second acquire is refused (exit 3) with pid, host, start time and lock id."""
    first = Journal.open(run_dir)
    mine = first.acquire_lock(command="apply plan.json")
    with Journal.open(run_dir) as second, pytest.raises(LockedError) as caught:
        second.acquire_lock(command="apply plan.json")
    assert caught.value.exit_code is ExitCode.REFUSED
    assert str(caught.value) == (
        f"{run_dir}: the run is locked by pid {os.getpid()} on host {socket.gethostname()} "
        f"since {mine.started:%Y-%m-%dT%H:%M:%SZ} (lock id {mine.lock_id}), "
        "running 'apply plan.json'"
    )
    assert caught.value.hint is not None
    assert f"--force-unlock {mine.lock_id}" in caught.value.hint
    first.close()


def test_a_live_holder_in_this_process_is_not_taken_over(run_dir: Path) -> None:
    """take_over_if_dead refuses when the holder is alive (here: this very process)."""
    with Journal.open(run_dir) as first, Journal.open(run_dir) as second:
        first.acquire_lock(command="apply")
        with pytest.raises(LockedError):
            second.take_over_if_dead(command="apply --resume")
        assert first.lock is not None
        first.record_intent(intent(1))  # still the writer


def test_a_dead_holder_on_this_host_is_taken_over(run_dir: Path) -> None:
    """A lock of a dead process on this host is taken over, logged, the old holder returned."""
    pid, lock_id = _dead_holder(run_dir)
    with Journal.open(run_dir) as journal:
        holder = journal.lock_holder()
        assert holder is not None and holder_alive(holder) is False
        with pytest.raises(LockedError, match=f"pid {pid} on host"):
            journal.acquire_lock(command="apply")
        old = journal.take_over_if_dead(command="apply --resume")
        assert old is not None
        assert (old.pid, old.lock_id, old.command) == (pid, lock_id, "apply plan.json")
        assert journal.lock is not None and journal.lock.lock_id != lock_id
        (event,) = journal.events("lock_takeover")
        assert event.detail["old"]["lock_id"] == lock_id
        assert event.detail["new"]["lock_id"] == journal.lock.lock_id
        journal.record_intent(intent(1))


def test_take_over_without_a_lock_just_takes_it(run_dir: Path) -> None:
    """When nobody holds the lock, take_over_if_dead acquires it and returns None."""
    with Journal.open(run_dir) as journal:
        assert journal.take_over_if_dead(command="apply --resume") is None
        assert journal.lock_holder() == journal.lock


def test_a_reused_pid_is_recognised_as_dead(run_dir: Path) -> None:
    """A holder pid now running another program (start time differs) counts as dead."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _abandon_lock(run_dir, pid=sleeper.pid, pid_start="1")
        with Journal.open(run_dir) as journal:
            assert journal.take_over_if_dead(command="resume") is not None
        _abandon_lock(run_dir, pid=sleeper.pid, pid_start=None)
        with Journal.open(run_dir) as journal, pytest.raises(LockedError):
            journal.take_over_if_dead(command="resume")  # alive, same program as far as known
    finally:
        sleeper.kill()
        sleeper.wait()


def test_our_own_pid_from_an_earlier_process_is_dead(run_dir: Path) -> None:
    """A lock naming this pid but not held by this process (a container restart) is stale."""
    _abandon_lock(run_dir, pid=os.getpid(), lock_id=str(uuid.uuid4()))
    with Journal.open(run_dir) as journal:
        assert journal.take_over_if_dead(command="resume") is not None


def test_another_hosts_lock_needs_force_unlock_with_its_id(run_dir: Path) -> None:
    """Another host's lock is never taken over; force-unlock needs its exact lock id."""
    lock_id = str(uuid.uuid4())
    _abandon_lock(run_dir, host="other-host", pid=4242, lock_id=lock_id)
    with Journal.open(run_dir) as journal:
        holder = journal.lock_holder()
        assert holder is not None
        assert holder_alive(holder) is None
        with pytest.raises(LockedError, match="on host other-host"):
            journal.take_over_if_dead(command="resume")
        wrong = str(uuid.uuid4())
        with pytest.raises(RefusedError) as caught:
            journal.force_unlock(wrong)
        assert str(caught.value) == (
            f"{run_dir}: lock id {wrong!r} does not match the lock held by pid 4242 on host "
            f"other-host since {stamp(holder.started)}; nothing was unlocked"
        )
        assert journal.lock_holder() == holder
        cleared = journal.force_unlock(lock_id)
        assert cleared == holder
        assert journal.lock_holder() is None
        assert journal.events("lock_forced")[0].detail["old"]["host"] == "other-host"
        journal.acquire_lock(command="apply --resume")


def test_force_unlock_of_an_unlocked_run_is_refused(run_dir: Path) -> None:
    """There is nothing to force-unlock when no one holds the lock."""
    with Journal.open(run_dir) as journal, pytest.raises(RefusedError, match="not locked"):
        journal.force_unlock(str(uuid.uuid4()))


def test_a_writer_whose_lock_was_forced_stops_writing(run_dir: Path) -> None:
    """After a force-unlock, the old writer's next write fails (exit 3) and lands nothing."""
    with Journal.open(run_dir) as old, Journal.open(run_dir) as new:
        mine = old.acquire_lock(command="apply")
        new.force_unlock(mine.lock_id)
        new.acquire_lock(command="apply --resume")
        with pytest.raises(LockLostError, match="lost the run lock") as caught:
            old.record_intent(intent(1))
        assert caught.value.exit_code is ExitCode.REFUSED
        assert old.lock is None
        assert old.release_lock() is False
        assert new.item(1).status is ItemStatus.PLANNED
        new.record_intent(intent(1))


def test_release_clears_the_lock(run_dir: Path) -> None:
    """release_lock removes the row, logs it, and lets the next writer in."""
    with Journal.open(run_dir) as journal:
        info = journal.acquire_lock(command="apply")
        assert journal.release_lock() is True
        assert journal.lock_holder() is None
        assert journal.events("lock_released")[0].detail == {"lock_id": info.lock_id}
    with Journal.open(run_dir) as journal:
        journal.acquire_lock(command="confirm")

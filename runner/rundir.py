"""Run folders: `runs/<UTC time>-<plan name>/`, one per `apply` (product-spec section 8).

A run folder is made with mode 0700 (it will hold `secrets.csv`), its name is the UTC start
time and the plan's name made safe for any file system, and it is unique (a suffix `-2`,
`-3`, … when two runs start in the same second). It holds:

    journal.sqlite   the journal (and its -wal/-shm files while open)
    secrets.csv      temporary passwords and access passes (0600), when the plan makes any
    events.jsonl     the structured log of `apply`
    report.csv, report.json, report.html, failed.csv, failed.yaml, unknown.csv,
    manual-steps.md (and report.xlsx on request)
                     the reports, rebuilt from the journal alone by `entra-bulk report`

`list_runs` is `entra-bulk runs`: it reads nothing but each folder's journal.

A plan is applied once per runs folder: `creating_run` holds an exclusive lock on the runs
folder itself (flock on the directory, released by the system if the process dies) while
`earlier_runs` looks for a run of the same plan digest and the new folder and its journal are
made, so two `apply` of the same plan at once cannot both start a run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner.errors import StorageError
from runner.journal import JOURNAL_NAME, Journal, holder_alive
from runner.runstate import ItemStatus, LockInfo

RUNS_DIR = "runs"
MAX_NAME = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SUFFIX = 1000


def safe_name(plan_name: str) -> str:
    """A plan name reduced to letters, digits, `.`, `_` and `-` (never empty, never hidden)."""
    name = _UNSAFE.sub("-", plan_name).strip("-.")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-.")
    return name or "plan"


def folder_name(plan_name: str, now: dt.datetime) -> str:
    """`20260131T120000Z-<plan name>`: sorts by start time."""
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{safe_name(plan_name)}"


def create_run_dir(root: Path, plan_name: str, *, now: dt.datetime) -> Path:
    """Make a new, unique run folder (mode 0700) under `root` and sync `root`."""
    base = folder_name(plan_name, now)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{root}: cannot create the runs folder: {exc.strerror}"
        raise StorageError(msg) from None
    for attempt in range(1, _MAX_SUFFIX):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            msg = f"{path}: cannot create the run folder: {exc.strerror}"
            raise StorageError(msg) from None
        try:
            if path.stat().st_mode & 0o777 != 0o700:
                path.chmod(0o700)  # the umask took owner bits away; the folder is still empty
            _fsync_dir(root)
        except OSError as exc:
            msg = f"{path}: cannot set up the run folder: {exc.strerror}"
            raise StorageError(msg) from None
        return path
    msg = f"{root}: too many runs named {base}"
    raise StorageError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One line of `entra-bulk runs`."""

    path: Path
    plan_name: str | None
    started: dt.datetime | None
    counts: Mapping[ItemStatus, int]
    lock: LockInfo | None
    lock_alive: bool | None  # None: no lock, or held on another host
    error: str | None = None  # the journal could not be read

    @property
    def total(self) -> int:
        """Items in the run."""
        return sum(self.counts.values())


def summarise(run_dir: Path) -> RunSummary:
    """A run's summary from its journal (errors are reported in the summary, not raised)."""
    try:
        with Journal.open(run_dir) as journal:
            header = journal.header()
            counts = journal.counts()
            lock = journal.lock_holder()
    except StorageError as exc:
        return RunSummary(
            path=run_dir,
            plan_name=None,
            started=None,
            counts={},
            lock=None,
            lock_alive=None,
            error=exc.message,
        )
    return RunSummary(
        path=run_dir,
        plan_name=header.plan_name,
        started=header.created,
        counts=counts,
        lock=lock,
        lock_alive=None if lock is None else holder_alive(lock),
    )


def list_runs(root: Path) -> list[RunSummary]:
    """Every run folder under `root` (those with a journal), oldest first."""
    try:
        folders = sorted(p for p in root.iterdir() if (p / JOURNAL_NAME).is_file())
    except FileNotFoundError:
        return []
    except OSError as exc:
        msg = f"{root}: cannot list the runs folder: {exc.strerror}"
        raise StorageError(msg) from None
    return [summarise(folder) for folder in folders]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def creating_run(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the runs folder (POSIX flock on the directory; waits while
    another `apply` makes its run folder). The runs folder is made when missing."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        msg = f"{root}: cannot open the runs folder: {exc.strerror}"
        raise StorageError(msg) from None
    try:
        if sys.platform != "win32":  # pragma: no branch - no flock on Windows
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def earlier_runs(root: Path, plan_name: str, digest: str) -> list[RunSummary]:
    """The runs under `root` of the plan with this digest, oldest first. Only folders named
    for the plan are opened; a journal that cannot be read (its creation never finished: the
    run never began) is passed over."""
    try:
        folders = sorted(
            p
            for p in root.iterdir()
            if safe_name(plan_name) in p.name and (p / JOURNAL_NAME).is_file()
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        msg = f"{root}: cannot list the runs folder: {exc.strerror}"
        raise StorageError(msg) from None
    found: list[RunSummary] = []
    for folder in folders:
        with contextlib.suppress(StorageError), Journal.open(folder) as journal:
            header = journal.header()
            if header.digest != digest:
                continue
            lock = journal.lock_holder()
            found.append(
                RunSummary(
                    path=folder,
                    plan_name=header.plan_name,
                    started=header.created,
                    counts=journal.counts(),
                    lock=lock,
                    lock_alive=None if lock is None else holder_alive(lock),
                )
            )
    return found

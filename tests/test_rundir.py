"""Run folders: safe unique names, mode 0700, and `entra-bulk runs` read from journals only."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from runner.journal import JOURNAL_NAME, Journal
from runner.rundir import create_run_dir, folder_name, list_runs, safe_name
from runner.runstate import ItemStatus
from tests.journal_support import header, intent, spec

NOW = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("offboarding wave 3", "offboarding-wave-3"),
        ("breach/2026-03 (urgent)", "breach-2026-03-urgent"),
        ("../../etc/passwd", "etc-passwd"),
        ("  ..hidden", "hidden"),
        ("café ∆ plan", "caf-plan"),
        ("", "plan"),
        ("...", "plan"),
        ("x" * 100, "x" * 60),
    ],
)
def test_plan_names_become_safe_folder_names(name: str, safe: str) -> None:
    """Only letters, digits, `.`, `_`, `-`; never empty, hidden, or climbing out of runs/."""
    assert safe_name(name) == safe


def test_folder_name_starts_with_the_utc_time() -> None:
    """`<UTC time>-<plan name>`, whole seconds, so names sort by start time."""
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert folder_name("wave 3", local) == "20260301T093015Z-wave-3"


def test_run_folders_are_0700_and_unique(tmp_path: Path) -> None:
    """Two runs in the same second get different folders, each 0700 whatever the umask."""
    root = tmp_path / "runs"
    old = os.umask(0o022)
    try:
        first = create_run_dir(root, "wave 3", now=NOW)
        second = create_run_dir(root, "wave 3", now=NOW)
    finally:
        os.umask(old)
    assert (first.name, second.name) == ("20260301T093015Z-wave-3", "20260301T093015Z-wave-3-2")
    for folder in (first, second):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert folder.parent == root


def _run(root: Path, name: str, when: dt.datetime, *, locked: bool) -> Journal:
    folder = create_run_dir(root, name, now=when)
    journal = Journal.create(folder, header(plan_name=name, created=when), [spec(0), spec(1)])
    journal.acquire_lock(command="apply")
    journal.record_intent(intent(1))
    if not locked:
        journal.close()
    return journal


def test_runs_are_listed_from_their_journals(tmp_path: Path) -> None:
    """Runs list plan, start, counts, lock holder; non-runs skipped, broken ones reported."""
    root = tmp_path / "runs"
    older = _run(root, "wave 1", NOW, locked=False)
    live = _run(root, "wave 2", NOW + dt.timedelta(hours=1), locked=True)
    (root / "notes").mkdir()
    broken = root / "20260301T120000Z-broken"
    broken.mkdir(mode=0o700)
    (broken / JOURNAL_NAME).write_bytes(b"this is not SQLite" * 100)
    runs = list_runs(root)
    assert [r.path.name for r in runs] == [
        "20260301T093015Z-wave-1",
        "20260301T103015Z-wave-2",
        "20260301T120000Z-broken",
    ]
    first, second, bad = runs
    assert (first.plan_name, first.started, first.lock, first.lock_alive) == (
        "wave 1",
        NOW,
        None,
        None,
    )
    assert (first.counts[ItemStatus.INTENT], first.counts[ItemStatus.PLANNED], first.total) == (
        1,
        1,
        2,
    )
    assert second.lock == live.lock
    assert second.lock_alive is True
    assert bad.plan_name is None and bad.error is not None
    assert str(broken / JOURNAL_NAME) in bad.error
    live.close()
    older.close()


def test_no_runs_folder_means_no_runs(tmp_path: Path) -> None:
    """`entra-bulk runs` before any apply lists nothing."""
    assert list_runs(tmp_path / "runs") == []

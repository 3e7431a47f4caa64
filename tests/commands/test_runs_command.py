"""`entra-bulk runs [--root DIR]`: every run under a folder, read from its journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ExitCode
from runner.journal import Journal
from tests.report_support import cli, make_run


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two synthetic runs under ./runs, and a folder that is not a run."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path)
    make_run(tmp_path, name="20260301T100000Z-wave-2")
    (tmp_path / "runs" / "notes").mkdir()
    return tmp_path / "runs"


def test_runs_are_a_table_of_plan_start_items_state_outcomes(root: Path) -> None:
    """Plain columns when not on a terminal; a run held by a live process is `running`."""
    with Journal.open(root / "20260301T100000Z-wave-2") as journal:
        journal.acquire_lock(command="apply")
        code, out, err = cli("runs")
    assert (code, err) == (ExitCode.SUCCESS, "")
    assert out == (
        "RUN                           PLAN         STARTED (UTC)        ITEMS  "
        "STATE               OUTCOMES\n"
        "20260301T090000Z-breach-2026  breach-2026  2026-03-01 09:00:00  12     1 unknown "
        "(resume)  3 verified, 1 noop, 4 manual, 1 failed, 1 unknown, 2 drifted\n"
        "20260301T100000Z-wave-2       breach-2026  2026-03-01 09:00:00  12     "
        "running             3 verified, 1 noop, 4 manual, 1 failed, 1 unknown, 2 drifted\n"
    )


def test_runs_json_lists_every_run(root: Path) -> None:
    """`--format json`: one object per run with its counts and state."""
    code, out, _ = cli("runs", "--format", "json", "--root", str(root))
    runs = json.loads(out)
    assert code == ExitCode.SUCCESS
    assert [(r["run"], r["total"], r["state"]) for r in runs] == [
        (str(root / "20260301T090000Z-breach-2026"), 12, "1 unknown (resume)"),
        (str(root / "20260301T100000Z-wave-2"), 12, "1 unknown (resume)"),
    ]


def test_no_runs_says_where_it_looked(tmp_path: Path) -> None:
    """An empty or missing root lists nothing and says where it looked."""
    assert cli("runs", "--root", str(tmp_path / "none")) == (
        ExitCode.SUCCESS,
        "",
        f"No runs in {tmp_path / 'none'} (apply makes one per run; --root names another folder)\n",
    )

"""`entra-bulk status RUN_DIR`: the run's plan, counts, lock, outcome and last events."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from runner.errors import ExitCode
from runner.journal import Journal
from tests.report_support import cli, make_run

RUN = "runs/20260301T090000Z-breach-2026"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The synthetic run, named relatively."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path)
    return Path(RUN)


def test_status_text_is_exact(run_dir: Path) -> None:
    """Header, counts in report order, no lock, the outcome with its next commands, events."""
    code, out, err = cli("status", RUN, "--events", "4")
    assert (code, err) == (ExitCode.SUCCESS, "")
    out = re.sub(r"lock_id=[0-9a-f-]{36}", "lock_id=ID", out)
    assert out == (
        f"run        {RUN}\n"
        "plan       breach-2026 (INC-4821)\n"
        "tenant     11111111-2222-3333-4444-555555555555  EMULATED TENANT\n"
        f"digest     sha256:{'ab' * 32}\n"
        "started    2026-03-01T09:00:00Z\n"
        "items      12: 3 verified, 1 noop, 4 manual, 1 failed, 1 unknown, 2 drifted\n"
        "lock       none\n"
        "outcome    finished with failures (exit 1): 1 unknown, 1 failed (the report says which)\n"
        f"next       entra-bulk apply --resume {RUN}  (reads the unknown outcomes back; never "
        "re-sends blindly)\n"
        f"next       entra-bulk plan {RUN}/failed.yaml  (re-plan them)\n"
        f"next       entra-bulk confirm {RUN} ITEM... (see manual-steps.md)\n"
        "events     last 4 of 8\n"
        "  2026-03-01T09:00:00Z  slow_down      detail=429, factor=0.5, seconds=0.0\n"
        "  2026-03-01T09:00:00Z  throttled      detail=429, factor=1.0, seconds=1.0\n"
        "  2026-03-01T09:00:00Z  warning        detail=0.93, factor=1.0, seconds=0.0\n"
        "  2026-03-01T09:00:00Z  lock_released  lock_id=ID\n"
    )


def test_status_json_is_one_document(run_dir: Path) -> None:
    """`--format json`: counts without zeros, the outcome, the lock and the last events."""
    code, out, _ = cli("status", RUN, "--format", "json", "--events", "2")
    document = json.loads(out)
    assert code == ExitCode.SUCCESS
    assert document["counts"] == {
        "failed": 1,
        "unknown": 1,
        "verified": 3,
        "noop": 1,
        "drifted": 2,
        "manual": 4,
    }
    assert (document["total"], document["lock"], document["emulated"]) == (12, None, True)
    assert document["outcome"]["exit_code"] == ExitCode.FINISHED_WITH_FAILURES
    assert [e["kind"] for e in document["events"]] == ["warning", "lock_released"]


def test_a_running_run_names_its_holder(run_dir: Path) -> None:
    """While a live process holds the lock, the run is `running` and the holder is named."""
    with Journal.open(run_dir) as journal:
        held = journal.acquire_lock(command="apply --resume")
        _, out, _ = cli("status", RUN, "--events", "0")
    holder = f"pid {os.getpid()} on host {socket.gethostname()} since "
    lock_line, outcome_line = out.splitlines()[6:8]
    assert lock_line.startswith(f"lock       'apply --resume', {holder}")
    assert lock_line.endswith(f"(lock id {held.lock_id}): running")
    assert outcome_line.startswith(
        f"outcome    running (still running): apply --resume holds the run: {holder}"
    )
    assert "events" not in out


def test_what_is_not_a_run_folder_is_an_input_error(tmp_path: Path) -> None:
    """A folder without a journal: exit 2, and how to find the runs."""
    assert cli("status", str(tmp_path)) == (
        ExitCode.INVALID_INPUT,
        "",
        f"error: {tmp_path}: not a run folder (no journal.sqlite in it)\n"
        "hint: `entra-bulk runs` lists the runs under ./runs\n",
    )

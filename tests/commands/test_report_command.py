"""`entra-bulk report RUN_DIR [--format ...]`: reports rebuilt from the journal alone, byte
for byte; xlsx on request; clear errors for what is not a run or a missing openpyxl."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from runner import report
from runner.errors import ExitCode
from runner.journal import Journal
from tests.report_support import cli, make_run

NOW = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
RUN = "runs/20260301T090000Z-breach-2026"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The synthetic run with its default reports, named relatively."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path)
    folder = Path(RUN)
    with Journal.open(folder) as journal:
        report.write_all(folder, journal, now=NOW)
    return folder


def test_reports_are_rebuilt_identically_from_the_journal(run_dir: Path) -> None:
    """Deleted reports come back byte for byte from `entra-bulk report` (the journal is all)."""
    names = ["report.csv", "report.json", "failed.csv", "failed.yaml", "unknown.csv"]
    before = {name: (run_dir / name).read_bytes() for name in names}
    for name in [*names, "report.html", "manual-steps.md"]:
        (run_dir / name).unlink()
    code, out, err = cli("report", str(run_dir))
    assert (code, err) == (ExitCode.SUCCESS, f"Rebuilt from {RUN}/journal.sqlite:\n")
    assert out.splitlines() == [
        f"{RUN}/failed.csv",
        f"{RUN}/failed.yaml",
        f"{RUN}/unknown.csv",
        f"{RUN}/manual-steps.md",
        f"{RUN}/report.csv",
        f"{RUN}/report.json",
        f"{RUN}/report.html",
    ]
    assert {name: (run_dir / name).read_bytes() for name in names} == before


def test_xlsx_without_openpyxl_says_how_to_get_it(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No openpyxl: exit 2 with the install command, before anything is written."""
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    stamp = (run_dir / "report.csv").stat().st_mtime_ns
    assert cli("report", str(run_dir), "--format", "xlsx") == (
        ExitCode.INVALID_INPUT,
        "",
        "error: report.xlsx needs openpyxl, which is not installed\n"
        "hint: pip install 'entra-bulk[xlsx]'\n",
    )
    assert (run_dir / "report.csv").stat().st_mtime_ns == stamp
    json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def test_xlsx_only_is_written_on_request(run_dir: Path) -> None:
    """`--format xlsx` writes report.xlsx (and the follow-up files), not the other reports."""
    stamp = (run_dir / "report.html").stat().st_mtime_ns
    code, out, _ = cli("report", RUN, "--format", "xlsx")
    assert code == ExitCode.SUCCESS
    assert out.splitlines() == [
        f"{RUN}/failed.csv",
        f"{RUN}/failed.yaml",
        f"{RUN}/unknown.csv",
        f"{RUN}/manual-steps.md",
        f"{RUN}/report.xlsx",
    ]
    assert (run_dir / "report.html").stat().st_mtime_ns == stamp


def test_a_live_run_is_reported_so_far_with_a_warning(run_dir: Path) -> None:
    """While a process holds the run, the reports are built and say so on stderr."""
    with Journal.open(run_dir) as journal:
        journal.acquire_lock(command="apply")
        code, _, err = cli("report", RUN, "--format", "json")
    assert code == ExitCode.SUCCESS
    assert err.startswith("warning: 'apply' still holds the run (pid ")
    assert err.endswith(f"): the reports show it so far\nRebuilt from {RUN}/journal.sqlite:\n")
    assert json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["outcome"][
        "state"
    ] == ("running")


def test_what_is_not_a_run_folder_is_an_input_error(tmp_path: Path) -> None:
    """A path with no journal: exit 2, nothing written."""
    assert cli("report", str(tmp_path / "nope")) == (
        ExitCode.INVALID_INPUT,
        "",
        f"error: {tmp_path / 'nope'}: not a run folder (no such folder)\n"
        "hint: `entra-bulk runs` lists the runs under ./runs\n",
    )

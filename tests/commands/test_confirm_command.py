"""`entra-bulk confirm RUN_DIR ITEM...`: manual items become confirmed under the run lock, all
or nothing, and the reports are rebuilt."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
from pathlib import Path

import pytest

from runner.errors import ExitCode
from runner.journal import Journal
from runner.runstate import ItemStatus
from tests.report_support import cli, make_run

RUN = "runs/20260301T090000Z-breach-2026"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The synthetic run (items 3, 6, 9, 12 are manual), named relatively."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path)
    return Path(RUN)


def _rows(run_dir: Path) -> dict[str, dict[str, str]]:
    text = (run_dir / "report.csv").read_bytes().decode("utf-8-sig")
    return {row["item"]: row for row in csv.DictReader(io.StringIO(text))}


def _statuses(run_dir: Path) -> dict[int, ItemStatus]:
    with Journal.open(run_dir) as journal:
        return {item.id: item.status for item in journal.iter_items()}


def test_confirm_records_the_steps_and_rebuilds_the_reports(run_dir: Path) -> None:
    """Items 3, 6, 9 confirmed by dana with her note; report.csv and manual-steps.md say so."""
    code, out, err = cli("confirm", RUN, "3", "6,9", "--by", "dana", "--note", "done in portal")
    assert (code, err) == (
        ExitCode.SUCCESS,
        f"1 manual steps still open; reports rebuilt in {RUN}\n",
    )
    assert out == (
        "confirmed item 3 (adele.vance@contoso.com, delete_app_passwords) by dana\n"
        "confirmed item 6 (alex.wilber@contoso.com, delete_app_passwords) by dana\n"
        "confirmed item 9 (megan.bowen@contoso.com, delete_app_passwords) by dana\n"
    )
    rows = _rows(run_dir)
    assert [(rows[i]["status"], rows[i]["confirmed_by"], rows[i]["reason"]) for i in "369"] == [
        ("confirmed", "dana", "done in portal")
    ] * 3
    assert rows["12"]["status"] == "manual"
    steps = (run_dir / "manual-steps.md").read_text(encoding="utf-8")
    assert "## delete_app_passwords: 4 users (3 confirmed)" in steps
    assert re.search(
        r"^- \[x\] item 3: adele\.vance@contoso\.com \(Adele Vance\), object id "
        r"00000000-0000-0000-0000-000000000001: confirmed by dana at "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(done in portal\)$",
        steps,
        re.MULTILINE,
    )
    assert "- [ ] item 12: isaiah.langer@contoso.com" in steps
    assert f'entra-bulk confirm {RUN} 12 --by "YOUR NAME"' in steps
    with Journal.open(run_dir) as journal:
        assert journal.lock_holder() is None
        kinds = [e.kind for e in journal.events()][-2:]
    assert kinds == ["lock_acquired", "lock_released"]


def test_only_manual_items_can_be_confirmed_and_nothing_is_recorded(run_dir: Path) -> None:
    """One item that is not a manual step refuses the whole command (exit 2)."""
    before = _statuses(run_dir)
    assert cli("confirm", RUN, "3", "4") == (
        ExitCode.INVALID_INPUT,
        "",
        "error: only manual steps can be confirmed: item 4 (alex.wilber@contoso.com, "
        "reset_password) is failed; nothing was recorded\n"
        "hint: manual-steps.md lists the manual items\n",
    )
    assert _statuses(run_dir) == before


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            ("99",),
            f"error: {RUN}: no item 99 in this run; nothing was recorded\n"
            "hint: manual-steps.md lists the manual items\n",
        ),
        (("3", "x"), "error: ITEM 'x' is not an item number (manual-steps.md lists them)\n"),
        (("0",), "error: ITEM '0' is not an item number (manual-steps.md lists them)\n"),
    ],
)
def test_items_must_be_numbers_of_this_run(
    run_dir: Path, items: tuple[str, ...], message: str
) -> None:
    """Item numbers that are not numbers, or not in the run, are input errors."""
    assert cli("confirm", RUN, *items) == (ExitCode.INVALID_INPUT, "", message)


def test_a_run_held_by_another_process_is_refused(run_dir: Path) -> None:
    """While a process holds the run lock, confirm refuses (exit 3) and names it."""
    with Journal.open(run_dir) as journal:
        held = journal.acquire_lock(command="apply")
        code, out, err = cli("confirm", RUN, "3")
    assert (code, out) == (ExitCode.REFUSED, "")
    assert err.startswith(
        f"error: {RUN}: the run is locked by pid {os.getpid()} on host {socket.gethostname()} "
        f"since "
    )
    assert f"(lock id {held.lock_id}), running 'apply'\n" in err
    assert _statuses(run_dir)[3] is ItemStatus.MANUAL


def test_confirming_again_warns_and_keeps_the_first(run_dir: Path) -> None:
    """An item already confirmed is left as it is, with a warning; the others are recorded."""
    cli("confirm", RUN, "3", "--by", "dana")
    code, out, err = cli("confirm", RUN, "3", "6", "--by", "erin")
    assert (code, out) == (
        ExitCode.SUCCESS,
        "confirmed item 6 (alex.wilber@contoso.com, delete_app_passwords) by erin\n",
    )
    assert err == (
        "warning: item 3 (adele.vance@contoso.com, delete_app_passwords) was already confirmed "
        f"by dana\n2 manual steps still open; reports rebuilt in {RUN}\n"
    )
    assert _rows(run_dir)["3"]["confirmed_by"] == "dana"

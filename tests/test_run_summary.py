"""What apply's end-of-run summary and the reports tell the operator, against the emulated
tenant: which secrets to hand over, what is throttled rather than unknown, seconds paused."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner.emulator import Emulator
from runner.errors import ExitCode
from runner.journal import Journal
from runner.progress import Tracker
from tests.conftest import EmulatorFactory
from tests.engine.apply_support import Tenant, acting_targets, secrets_of, statuses, tenant_for

BREACH = """version: 1
name: breach
actions: [reset_password, revoke_sessions]
targets:
  - user: adele.vance@contoso.com
  - user: alex.wilber@contoso.com
  - user: megan.bowen@contoso.com
safety: {required_approvals: 0, canary: 1}
"""


@pytest.fixture
def tenant(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    emulator: Emulator = emulator_factory(consistency_delay_s=0.3)
    return tenant_for(emulator, tmp_path, monkeypatch)


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_a_password_never_set_is_not_handed_over(tenant: Tenant) -> None:
    """A reset lost before Graph applied it: its secrets.csv row is named never set, not handed."""
    tenant.fault(
        kind="status", status=504, when="before", method="PATCH", path="/users/*", count=1, skip=1
    )
    ran = tenant.apply(tenant.plan(BREACH))
    assert ran.code == ExitCode.FINISHED_WITH_FAILURES, ran.err
    run_dir = tenant.run_dir()
    run = str(run_dir.relative_to(tenant.folder))
    assert _lines(ran.err, "Secrets") == [
        f"Secrets: 2 of the 3 in {run}/secrets.csv (0600) are in effect: hand over only those "
        '(secret_state "in effect" in report.csv), then delete the file',
        "Secrets never set: 1 in secrets.csv, of items 3 (alex.wilber@contoso.com): their "
        "change was not applied, do not hand them over",
    ]
    rows = {row["secret_ref"]: row for row in tenant.report() if row["secret_ref"]}
    secrets = secrets_of(run_dir)
    assert (run_dir / "secrets.csv").stat().st_mode & 0o777 == 0o600
    assert sorted(rows) == sorted(row["secret_ref"] for row in secrets)  # every row is named
    states = {row["upn"]: (row["status"], row["secret_state"]) for row in rows.values()}
    assert states == {
        "adele.vance@contoso.com": ("verified", "in effect"),
        "alex.wilber@contoso.com": ("failed", "never set"),
        "megan.bowen@contoso.com": ("verified", "in effect"),
    }
    for row in secrets:
        assert row["value"] not in ran.err + ran.out
    (failed,) = [row for row in rows.values() if row["status"] == "failed"]
    assert "reading back" not in failed["reason"], failed["reason"]


ALL_STAFF = """version: 1
name: all
actions: [revoke_sessions]
targets:
  - group: All Staff
safety: {required_approvals: 0, canary: 0}
"""


def test_throttled_items_after_a_retry_budget_halt_are_not_yet_sent(tenant: Tenant) -> None:
    """After a 429 halt, items Graph turned away are 'not yet sent', not unknown; resume sends."""
    plan = tenant.plan(ALL_STAFF)
    acting = acting_targets(plan)
    tenant.fault(
        kind="status",
        status=429,
        retry_after="decimal:0.01",
        method="POST",
        path="/users/*/revokeSignInSessions",
    )
    ran = tenant.apply(plan, "--confirm-count", str(acting))
    assert ran.code == ExitCode.HALTED, ran.err
    run = str(tenant.run_dir().relative_to(tenant.folder))
    assert _lines(ran.err, "Not yet sent") == [
        f"Not yet sent: {acting} items Graph turned away without executing them (throttled or "
        f"unavailable); resume sends them: entra-bulk apply --resume {run}"
    ]
    assert not _lines(ran.err, "Unknown outcome")
    assert not (tenant.run_dir() / "unknown.csv").exists()
    tenant.admin.delete("/faults")
    resumed = tenant.cli("--tenant", "emulator", "apply", "--resume", run, "--yes")
    assert resumed.code == ExitCode.SUCCESS, resumed.err
    assert statuses(tenant.report())["verified"] == acting


def _killed_apply(tenant: Tenant) -> Path:
    """Apply BREACH in a child process SIGKILLed at its third intent; its run folder."""
    plan = tenant.plan(BREACH)
    killed = subprocess.run(
        [sys.executable, "-m", "runner", "--tenant", "emulator", "apply", str(plan), "--yes"],
        cwd=tenant.folder,
        env={**os.environ, "ENTRA_BULK_CRASH_AT": "after_intent_commit:3"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    return tenant.run_dir()


def test_status_of_a_killed_run_says_no_exit_was_recorded(tenant: Tenant) -> None:
    """A SIGKILLed apply is 'stopped without finishing (no exit recorded)', not exit 130."""
    run_dir = _killed_apply(tenant)
    ran = tenant.cli("status", str(run_dir), "--events", "0")
    (outcome,) = _lines(ran.out, "outcome")
    outcome = re.sub(r"since \S+ \(lock id [0-9a-f-]+\)", "since T (lock id L)", outcome)
    with Journal.open(run_dir) as journal:
        holder = journal.lock_holder()
    assert holder is not None
    assert outcome == (
        "outcome    stopped without finishing (no exit recorded): 4 items not finished; the "
        f"process is gone (pid {holder.pid} on host {holder.host} since T (lock id "
        "L)) and recorded no exit: it was killed"
    )
    assert _lines(ran.out, "next") == [f"next       entra-bulk apply --resume {run_dir}"]


def test_a_resume_that_cannot_sign_in_lets_go_of_the_run(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume whose sign-in fails (exit 5) journals that end and releases the lock it took
    over: status says why, not 'killed', and a later resume needs no takeover."""
    run_dir = _killed_apply(tenant)
    # The same tenant, its sign-in authority on a port nothing listens on.
    info = json.loads(Path(os.environ["ENTRA_BULK_EMULATOR"]).read_text())
    info["authority"] = re.sub(r"//[^/]+/", "//127.0.0.1:9/", info["authority"])
    unreachable = tenant.folder / "unreachable.json"
    unreachable.write_text(json.dumps(info))
    monkeypatch.setenv("ENTRA_BULK_EMULATOR", str(unreachable))
    failed = tenant.cli("apply", "--resume", str(run_dir))
    assert failed.code == ExitCode.AUTH, failed.err
    with Journal.open(run_dir) as journal:
        assert journal.lock_holder() is None
    ran = tenant.cli("status", str(run_dir), "--events", "0")
    assert _lines(ran.out, "outcome") == [
        "outcome    stopped: sign-in or permission (exit 5): 4 items not finished; a token or "
        "a permission failed mid-run (the run's error output says which)"
    ]


HR = """version: 1
name: hr
actions: [revoke_sessions]
targets:
  - group: HR Team
  - group: Sales Team
safety: {required_approvals: 0, canary: 0}
"""


def test_progress_summary_and_report_agree_on_seconds_paused(tenant: Tenant) -> None:
    """Overlapping 429 pauses: progress, summary and report.json give the same paused seconds."""
    tenant.fault(
        kind="status",
        status=429,
        retry_after="int:1",
        method="POST",
        path="/users/*/revokeSignInSessions",
        count=14,
    )
    ran = tenant.apply(tenant.plan(HR))
    assert ran.code == ExitCode.SUCCESS, ran.err
    (line,) = _lines(ran.err, "Graph requests")
    shown = float(re.search(r"paused ([0-9.]+) s", line).group(1))  # type: ignore[union-attr]
    run_dir = tenant.run_dir()
    now = [0.0]
    tracker = Tracker(clock=lambda: now[0])  # the progress display, fed the run's events again
    asked = 0.0
    for text in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(text)
        now[0] = dt.datetime.fromisoformat(event["time"]).timestamp()
        tracker.event(event)
        if event["event"] == "pacing" and event["kind"] == "pause":
            asked += event["seconds"]
    report = json.loads((run_dir / "report.json").read_text())["timeline"]["paused_s"]
    assert asked >= 5 * shown > 0  # the pauses overlapped: a sum would count them many times
    assert abs(tracker.paused_s - shown) < 0.1
    assert abs(report - shown) < 0.1

"""`entra-bulk demo`: one command, no set-up, the whole flow against a temporary emulated
tenant; the plan and run folder stay, and the last line is the path of report.html."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from runner import demo
from runner.errors import ExitCode
from tests.report_support import cli


def test_demo_runs_the_whole_flow_and_ends_with_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate → plan → approve → apply → report → status, narrated; nothing else touched."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ENTRA_BULK_EMULATOR", "/nonexistent/emulator.json")
    # A temporary folder of this test's own: other tests and processes make demos too.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    started = time.monotonic()
    code, out, err = cli("--tenant", "contoso", "demo")
    took = time.monotonic() - started
    assert code == ExitCode.SUCCESS, err
    (run_dir,) = (tmp_path / "entra-bulk-demo" / "runs").iterdir()
    run = f"entra-bulk-demo/runs/{run_dir.name}"
    plan, frozen = (
        "entra-bulk-demo/breach-containment.yaml",
        "entra-bulk-demo/breach-containment.plan.json",
    )
    lines = out.splitlines()
    assert [line for line in lines if line.startswith(("$ ", "Step "))] == [
        "Step 1 of 6: check the plan offline: schema, UPNs, order of actions (no network)",
        f"$ entra-bulk validate {plan}",
        "Step 2 of 6: dry-run it against the tenant: resolve the users, read their state, apply "
        "the safety rails, print the diff and freeze it, with its digest, for review",
        f"$ entra-bulk --tenant emulator plan {plan} -o {frozen}",
        "Step 3 of 6: approve exactly this plan, bound to its digest (here as 'demo-reviewer', "
        "standing in for a colleague; the author may not approve their own plan)",
        f"$ entra-bulk approve {frozen} --approver demo-reviewer --comment 'recorded by "
        "entra-bulk demo, standing in for a second reviewer'",
        "Step 4 of 6: apply it: canary first, then batches paced under Graph's limits, every "
        "request journaled before it is sent, every change read back and verified",
        f"$ entra-bulk --tenant emulator apply {frozen} --yes --run-dir entra-bulk-demo/runs",
        "Step 5 of 6: rebuild the reports from the run's journal, as you can any time",
        f"$ entra-bulk report {run}",
        "Step 6 of 6: see how the run stands: counts, lock, outcome, last events",
        f"$ entra-bulk status {run}",
    ]
    assert lines[-2:] == ["Open the report in a browser:", str(run_dir / "report.html")]
    assert f"Where to look, in {run}:" in lines
    assert "outcome    succeeded (exit 0): everything applied and verified" in lines
    assert err.startswith(
        "warning: the demo always uses its own emulated tenant: --tenant and --config are ignored\n"
    )
    assert "Result: 3 manual, 1 noop, 8 verified\n" in err
    text = (run_dir / "report.csv").read_bytes().decode("utf-8-sig")
    assert Counter(row["status"] for row in csv.DictReader(io.StringIO(text))) == {
        "verified": 8,
        "manual": 3,
        "noop": 1,
    }
    for name in ("report.html", "report.json", "manual-steps.md", "secrets.csv", "journal.sqlite"):
        assert (run_dir / name).is_file(), name
    approvals = json.loads(Path(frozen + ".approvals.json").read_text(encoding="utf-8"))
    assert [a["approver"] for a in approvals] == ["demo-reviewer"]
    assert os.environ["ENTRA_BULK_EMULATOR"] == "/nonexistent/emulator.json"
    assert list(private.iterdir()) == []
    assert not (tmp_path / "data").exists()
    assert took < 60


def test_every_example_plan_can_be_the_demo() -> None:
    """The demo offers the example plans that ship in plans/ (from the checkout or a wheel)."""
    assert demo.examples() == ["breach-containment", "offboarding", "reonboarding-tap"]


def test_an_unknown_example_is_a_usage_error(tmp_path: Path) -> None:
    """`--example` takes only the shipped examples; nothing is created otherwise."""
    code, _, err = cli("demo", "--example", "nope", "--dir", str(tmp_path / "d"))
    assert code == ExitCode.INVALID_INPUT
    assert "Invalid value for '--example': 'nope' is not one of" in err
    assert not (tmp_path / "d").exists()

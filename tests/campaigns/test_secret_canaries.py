"""Secret canaries: the emulated tenant's client secret, every access token it signed, and
every password and pass the runs wrote to secrets.csv are searched for (exact bytes) in
everything the runs left or printed: journals (the SQLite bytes and their WAL), events.jsonl,
reports, crash traceback files, the state folder, stdout and stderr; over successful,
failing, retrying, re-issuing, crashing, halting and buggy runs. The count found must be 0.

The crash campaign and the fault matrix scan their own runs the same way."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

from tests.campaigns.campaign_support import (
    USERS,
    CampaignTenant,
    Ran,
    only_run_dir,
    plan_text,
    scan_campaign,
    table,
)
from tests.campaigns.conftest import Figures

# A bug in the middle of apply: the report step raises an exception whose text carries every
# secret the run wrote (and the client secret), as a careless error message would. The CLI's
# error boundary must save the traceback with all of them redacted.
BUGGY_APPLY = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from runner import report
    from runner.cli import main
    from runner.secretfile import SecretsFile

    def broken_reports(run_dir: Path, journal, **kwargs) -> None:
        values = [r.value for r in SecretsFile(run_dir).records()]
        import json, os
        info = json.loads(Path(os.environ["ENTRA_BULK_EMULATOR"]).read_text())
        values.append(info["apps"][0]["client_secret"])
        raise RuntimeError("reports failed while holding " + " ".join(values))

    report.write_all = broken_reports
    main(sys.argv[1:])
    """
)


def _buggy(tenant: CampaignTenant, plan: Path, runs: Path) -> Ran:
    import subprocess
    import time

    started = time.monotonic()
    argv = [sys.executable, "-c", BUGGY_APPLY, "--tenant", "emulator", "apply", str(plan)]
    argv += ["--yes", "--run-dir", str(runs)]
    done = subprocess.run(
        argv, cwd=tenant.folder, env=tenant.env(), capture_output=True, text=True, check=False
    )
    ran = Ran(
        args=("apply", "(with a bug)"),
        code=done.returncode,
        out=done.stdout,
        err=done.stderr,
        seconds=time.monotonic() - started,
    )
    tenant.outputs.append(ran)
    return ran


def test_no_secret_reaches_any_output(
    tmp_path: Path, tenant_template: Path, figures: Figures
) -> None:
    """Over good, failing, retrying, re-issuing, crashed, halted and buggy runs, no known
    secret appears anywhere but secrets.csv."""
    tenant = CampaignTenant.start(tmp_path / "canaries", template=tenant_template)
    try:
        plan = tenant.plan(plan_text("canaries", canary=0), "canaries")
        runs = tmp_path / "canaries" / "runs"
        paths = []

        def fresh(name: str) -> Path:
            tenant.reset()
            return runs / name

        # 1. A clean run: passwords and passes written.
        tenant.cli("apply", str(plan), "--yes", "--run-dir", str(fresh("clean")))
        # 2. Retrying and failing paths: 401 refresh, 429 retries, a pass lost and re-issued,
        #    lost answers, a mangled batch, a permanent 403.
        tenant.reset()
        adele = tenant.user_id(USERS[0])
        for rule in (
            {"kind": "token_expired", "path": "/$batch", "count": 1, "skip": 1},
            {
                "kind": "status",
                "status": 429,
                "retry_after": "decimal:0.3",
                "method": "POST",
                "rate": 0.3,
                "seed": 1,
            },
            {
                "kind": "status",
                "status": 500,
                "when": "after",
                "method": "POST",
                "path": "/users/*/authentication/temporaryAccessPassMethods",
                "count": 2,
            },
            {"kind": "drop_after", "path": "/$batch", "count": 1, "skip": 3},
            {"kind": "batch_malformed", "count": 1, "skip": 4},
            {"kind": "status", "status": 403, "method": "PATCH", "path": f"^/users/{adele}$"},
        ):
            tenant.fault(**rule)
        tenant.cli("apply", str(plan), "--yes", "--run-dir", str(runs / "faults"))
        tenant.admin.delete("/faults")
        # 3. A crash after sending, then the resume that reconciles it.
        env = tenant.env(ENTRA_BULK_CRASH_AT="after_send_before_outcome:2")
        tenant.cli("apply", str(plan), "--yes", "--run-dir", str(fresh("crash")), env=env)
        crashed = only_run_dir(runs / "crash")
        assert crashed is not None
        tenant.cli("apply", "--resume", str(crashed))
        # 4. A run halted by its canary (403 on the first target), with error messages.
        halted_plan = tenant.plan(plan_text("halted", canary=1), "halted")
        tenant.reset()
        tenant.fault(kind="status", status=403, method="PATCH", path=f"^/users/{adele}$")
        halted = tenant.cli("apply", str(halted_plan), "--yes", "--run-dir", str(runs / "halt"))
        assert halted.code == 4, halted.err
        tenant.admin.delete("/faults")
        # 5. An interrupted run (SIGTERM), then resumed.
        tenant.reset()
        tenant.admin.patch("/config", json={"latency_ms": "50:100"})
        stopped = tenant.cli(
            "apply",
            str(plan),
            "--yes",
            "--run-dir",
            str(runs / "sigterm"),
            kill_when=lambda: any((runs / "sigterm").glob("*/secrets.csv")),
            signal_after_s=(0.2, signal.SIGTERM),
        )
        tenant.admin.patch("/config", json={"latency_ms": "0:0"})
        interrupted = only_run_dir(runs / "sigterm")
        assert interrupted is not None, stopped.err
        tenant.cli("apply", "--resume", str(interrupted))
        # 6. A bug: an exception carrying secrets, its traceback saved in the run folder.
        buggy = _buggy(tenant, plan, fresh("bug"))
        assert buggy.code == 70, buggy.err
        bug_dir = only_run_dir(runs / "bug")
        assert bug_dir is not None
        (traceback,) = bug_dir.glob("crash-*.log")
        assert "reports failed while holding [REDACTED]" in traceback.read_text()
        for folder in runs.iterdir():
            found = only_run_dir(folder)
            if found is not None:
                paths.append(found)
        scan = scan_campaign(tenant, paths)
    finally:
        tenant.stop()
    kinds: dict[str, int] = {}
    for kind in scan.secrets.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    rows = [{"secret": kind, "known": n} for kind, n in sorted(kinds.items())]
    text = table(rows, ["secret", "known"])
    text += (
        f"\nplaces scanned {scan.places} ({scan.bytes_scanned / 1024:.0f} KiB: journals, WAL, "
        f"events, reports, state folder, stdout, stderr), crash traceback files "
        f"{scan.tracebacks}; found: {len(scan.found)}"
    )
    figures("secret canaries", text)
    assert scan.tracebacks >= 1
    assert kinds.get("temporary_password", 0) >= 10
    assert kinds.get("temporary_access_pass", 0) >= 10
    assert kinds.get("access token", 0) >= 2
    assert not scan.found, scan.found

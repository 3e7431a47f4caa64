"""Fault matrix (reliability.md Part 2 §2.1): every scenario the emulated tenant or this
machine can produce, over a plan of reset password, temporary access pass, re-registration,
revoke and disable; per scenario the faults injected, items lost, non-repeatable effects
duplicated and items unknown before and after reconciliation (all printed, all checked)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.campaigns.campaign_support import (
    CampaignTenant,
    check_run,
    delegated_run_dir,
    scan_campaign,
    table,
)
from tests.campaigns.conftest import Figures
from tests.campaigns.fault_matrix import SCENARIOS, Outcome, Scenario, run_scenario

# Faults of §2.1 produced elsewhere or not at all (printed with the matrix).
ELSEWHERE = {
    "F8 (DNS)": "a name that does not resolve: the emulator is reached by address; a "
    "refused connection (F8a, F8b) takes the same NOT_SENT path",
    "F17": "refresh token revoked: no refresh token in app-only flows; prevented by the "
    "self rail (bad input 47)",
    "F22": "resetPassword operations (delegated only): test_reset_operation_is_polled_again_"
    "after_a_crash, at engine level (the CLI has no delegated emulator profile)",
    "F23, F24": "the crash campaign (test_crash_campaign.py)",
}


def _row(scenario: Scenario, outcome: Outcome, findings: Any) -> dict[str, Any]:
    return {
        "F": scenario.fid,
        "scenario": scenario.title,
        "faults": outcome.injected,
        "lost": findings.lost if findings else "-",
        "dup": findings.duplicated if findings else "-",
        "unknown→left": f"{findings.unknown_seen}→{findings.unknown_left}" if findings else "-",
        "exits": ",".join(str(r.code) for r in outcome.runs),
        "s": f"{outcome.seconds:.1f}",
        "notes": "; ".join(outcome.notes),
    }


def run_matrix(
    scenarios: tuple[Scenario, ...], root: Path, template: Path, workers: int = 3
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Run the scenarios on `workers` tenants; rows, problems and secret canaries found."""
    tenants = [
        # time_scale 20: the pacer's budget refills 20 times faster (its slow-downs after a
        # 429 end sooner); the faults' own Retry-After values are not scaled.
        CampaignTenant.start(root / f"worker-{w}", template=template, time_scale=20.0)
        for w in range(workers)
    ]
    try:

        def work(w: int) -> list[tuple[Scenario, Outcome, Any]]:
            done = []
            for scenario in scenarios[w::workers]:
                try:
                    outcome, findings = run_scenario(scenario, tenants[w], root / f"worker-{w}")
                except Exception as exc:  # noqa: BLE001 - reported with the scenario
                    outcome, findings = Outcome(problems=[f"{type(exc).__name__}: {exc}"]), None
                done.append((scenario, outcome, findings))
            return done

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [r for share in pool.map(work, range(workers)) for r in share]
        results.sort(key=lambda r: scenarios.index(r[0]))
        rows = [_row(*r) for r in results]
        problems = []
        for scenario, outcome, findings in results:
            if scenario.known_bug is not None:
                found_bug = [*outcome.problems, *(findings.problems if findings else [])]
                outcome.notes.append(f"KNOWN BUG ({'seen' if found_bug else 'not seen'})")
                continue
            for text in [*outcome.problems, *(findings.problems if findings else [])]:
                problems.append(f"{scenario.fid}: {text}")
            if findings is not None:
                for name in ("lost", "duplicated", "unknown_left", "sends_without_intent"):
                    if getattr(findings, name):
                        problems.append(f"{scenario.fid}: {name} = {getattr(findings, name)}")
        found = 0
        for tenant in tenants:
            runs = [p.parent for p in tenant.folder.rglob("journal.sqlite")]
            scan = scan_campaign(tenant, runs)
            found += len(scan.found)
            problems += [f"secret in {place} ({kind})" for place, kind in scan.found]
        return rows, problems, found
    finally:
        for tenant in tenants:
            tenant.stop()


def _report(rows: list[dict[str, Any]], problems: list[str], figures: Figures, title: str) -> None:
    text = table(rows, list(rows[0]))
    bugs = [s for s in SCENARIOS if s.known_bug and any(r["F"] == s.fid for r in rows)]
    text += "".join(f"\nKNOWN BUG {s.fid}: {s.known_bug}" for s in bugs)
    text += "\n\nnot in this matrix:\n" + "\n".join(f"  {k}: {v}" for k, v in ELSEWHERE.items())
    figures(title, text)
    assert not problems, "\n".join(problems)


def test_fault_matrix(tmp_path: Path, tenant_template: Path, figures: Figures) -> None:
    """Under every fault the emulator produces, nothing is lost, no reset or pass repeats,
    every unknown outcome is reconciled, and each scenario shows its own expected effect."""
    scenarios = tuple(s for s in SCENARIOS if not s.slow)
    rows, problems, found = run_matrix(scenarios, tmp_path, tenant_template)
    _report(rows, problems, figures, f"fault matrix ({len(rows)} scenarios)")
    assert found == 0


@pytest.mark.slow
def test_fault_matrix_slow_scenarios(
    tmp_path: Path, tenant_template: Path, figures: Figures
) -> None:
    """F8b, F10 and F11: a 20 s refusal is waited out; an answer that never comes, or drips,
    is cut by the 60 s deadline and reconciled (each takes up to a minute: full size only)."""
    scenarios = tuple(s for s in SCENARIOS if s.slow)
    rows, problems, _ = run_matrix(scenarios, tmp_path, tenant_template)
    _report(rows, problems, figures, "fault matrix: deadline scenarios")


def test_tls_interception_is_a_clear_error(tmp_path: Path, tenant_template: Path) -> None:
    """F32: a certificate from a CA the profile does not trust stops apply with a clear
    message and exit 5, never an internal error; nothing is sent."""
    (scenario,) = [s for s in SCENARIOS if s.fid == "F32"]
    tenant = CampaignTenant.start(tmp_path / "tls", template=tenant_template)
    try:
        outcome, _ = run_scenario(scenario, tenant, tmp_path / "tls")
    finally:
        tenant.stop()
    assert not outcome.problems, outcome.problems


def test_reset_operation_is_polled_again_after_a_crash(
    tmp_path: Path, tenant_template: Path, figures: Figures
) -> None:
    """F22: an apply killed while its resetPassword operations run (202, Location kept) is
    resumed by polling them to their end: one reset request per user, never a second."""
    import subprocess
    import sys
    import time

    from runner.journal import Journal

    tenant = CampaignTenant.start(tmp_path / "f22", template=tenant_template, operation_delay_s=3.0)
    try:
        users = ("adele.vance@contoso.com", "alex.wilber@contoso.com")
        run_dir, token = delegated_run_dir(tenant, tmp_path / "f22", users)
        argv = [
            sys.executable,
            "-c",
            "from tests.campaigns.campaign_support import delegated_child; delegated_child()",
            str(run_dir),
            tenant.emulator.graph_url,
        ]
        env = tenant.env(ENTRA_BULK_TEST_TOKEN=token)
        child = subprocess.Popen(argv, cwd=tenant.folder, env=env, stderr=subprocess.PIPE)
        assert tenant.emulator.store is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = tenant.emulator.store.query_one("SELECT count(*) AS n FROM operations")
            if running["n"] == len(users):
                break
            time.sleep(0.02)
        time.sleep(0.3)
        child.kill()
        child.wait()
        journal = Journal.open(run_dir)
        try:
            kept = [s.location for s in journal.steps() if s.location]
        finally:
            journal.close()
        resumed = subprocess.run(argv, cwd=tenant.folder, env=env, capture_output=True, check=False)
        assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
        findings = check_run(tenant, run_dir, final=False)
        posts = tenant.emulator.store.query(  # any app: the delegated token is the CLI app's
            "SELECT seq FROM requests WHERE method = 'POST' AND path LIKE '%/resetPassword'"
        )
        resets = [r for r in tenant.ledger() if r["effect"] == "password_reset"]
    finally:
        tenant.stop()
    figures(
        "F22: resetPassword operations across a crash",
        f"Locations kept at the kill {len(kept)}; resetPassword requests {len(posts)}; resets "
        f"in the ledger {len(resets)}; items {dict(findings.statuses)}",
    )
    assert len(kept) == len(users)
    assert len(posts) == len(resets) == len(users)
    assert findings.statuses == {"verified": len(users)}, findings.statuses
    assert not findings.problems, findings.problems

"""Apply against the emulated tenant: outcomes, faults, reconciliation, rails of the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.emulator import Emulator
from runner.errors import ExitCode
from runner.journal import Journal
from tests.conftest import EmulatorFactory
from tests.engine.apply_support import (
    Tenant,
    acting_targets,
    all_text,
    secrets_of,
    statuses,
    tenant_for,
)

ROOT = Path(__file__).resolve().parents[2]
BREACH = """version: 1
name: breach
ticket: INC-1
actions: [reset_password, revoke_sessions, require_mfa_reregistration, delete_app_passwords]
targets:
  - user: adele.vance@contoso.com
  - user: alex.wilber@contoso.com
  - user: megan.bowen@contoso.com
safety: {required_approvals: 0, canary: 1}
"""
HR = """version: 1
name: hr
actions: [{actions}]
targets:
  - group: HR Team
  - group: Sales Team
safety: {{required_approvals: 0, canary: 2, halt_on_failure_rate: 0.5}}
"""


@pytest.fixture
def tenant(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    emulator: Emulator = emulator_factory(consistency_delay_s=0.3)
    return tenant_for(emulator, tmp_path, monkeypatch)


def test_breach_plan_is_applied_and_verified(tenant: Tenant) -> None:
    """Every action happens once, is verified, and app passwords become manual items."""
    ran = tenant.apply(tenant.plan(BREACH))
    assert ran.code == ExitCode.SUCCESS, ran.err
    rows = tenant.report()
    assert statuses(rows) == {"verified": 8, "manual": 3, "noop": 1}
    effects = tenant.effects()
    for upn in ("adele.vance@contoso.com", "alex.wilber@contoso.com", "megan.bowen@contoso.com"):
        user = tenant.user_id(upn)
        assert effects[(user, "password_reset")] == 1
        assert effects[(user, "sessions_revoked")] == 1
    assert "Result: 3 manual, 1 noop, 8 verified" in ran.err


def test_passwords_are_in_secrets_csv_only(tenant: Tenant) -> None:
    """Generated passwords reach secrets.csv (0600) and nothing else the run wrote or printed."""
    ran = tenant.apply(tenant.plan(BREACH))
    run_dir = tenant.run_dir()
    secrets = secrets_of(run_dir)
    assert len(secrets) == 3
    assert {row["kind"] for row in secrets} == {"temporary_password"}
    assert (run_dir / "secrets.csv").stat().st_mode & 0o777 == 0o600
    assert run_dir.stat().st_mode & 0o777 == 0o700
    everything = (
        all_text(tenant.folder) + ran.out + ran.err + str(tenant.admin.get("/requests").json())
    )
    for row in secrets:
        assert row["value"] not in everything


def test_reset_with_504_after_the_change_is_reconciled_not_resent(tenant: Tenant) -> None:
    """F7: a 504 after the reset was applied is read back and verified; never sent twice."""
    tenant.fault(kind="status", status=504, when="after", method="PATCH", path="/users/*")
    ran = tenant.apply(tenant.plan(BREACH))
    assert ran.code == ExitCode.SUCCESS, ran.err
    effects = tenant.effects()
    for upn in ("adele.vance@contoso.com", "alex.wilber@contoso.com", "megan.bowen@contoso.com"):
        assert effects[(tenant.user_id(upn), "password_reset")] == 1
    assert "reconciled by read-back: 3" in ran.err


def test_reset_lost_before_the_change_is_failed_not_resent(tenant: Tenant) -> None:
    """A reset whose outcome is unknown and that did not happen is failed, never re-sent."""
    tenant.fault(
        kind="status", status=504, when="before", method="PATCH", path="/users/*", count=1, skip=1
    )
    ran = tenant.apply(tenant.plan(BREACH))
    assert ran.code == ExitCode.FINISHED_WITH_FAILURES
    (failed,) = [row for row in tenant.report() if row["status"] == "failed"]
    assert failed["action"] == "reset_password"
    assert failed["error_message"] == (
        "the outcome was unknown and the read-back shows it was not applied; "
        "not re-sent automatically (re-plan to retry)"
    )
    assert tenant.effects()[(failed["object_id"], "password_reset")] == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "drop_after", "path": "/$batch", "rate": 0.5, "seed": 1},
        {"kind": "batch_missing_items", "drop": 2, "rate": 0.5, "seed": 3},
        {
            "kind": "batch_status",
            "status": 500,
            "body": False,
            "when": "after",
            "rate": 0.4,
            "seed": 4,
        },
        {"kind": "batch_malformed", "rate": 0.3, "seed": 5},
        {"kind": "batch_truncated", "rate": 0.3, "seed": 6},
        {"kind": "batch_unknown_id", "rate": 0.3, "seed": 7},
        {"kind": "batch_duplicate_id", "rate": 0.3, "seed": 8},
        {
            "kind": "status",
            "status": 429,
            "retry_after": "decimal:0.3",
            "method": "POST",
            "rate": 0.3,
            "seed": 9,
        },
        {
            "kind": "status",
            "status": 503,
            "retry_after": "int:1",
            "method": "DELETE",
            "rate": 0.3,
            "seed": 10,
        },
        {"kind": "batch_status", "status": 429, "retry_after": "0.5", "rate": 0.3, "seed": 11},
        {"kind": "token_expired", "path": "/$batch", "count": 1, "skip": 3},
    ],
)
def test_faults_lose_nothing_and_repeat_no_reset(tenant: Tenant, rule: dict[str, object]) -> None:
    """Under each fault every item ends terminal and no password is reset twice."""
    plan = tenant.plan(
        HR.format(actions="reset_password, revoke_sessions, require_mfa_reregistration")
    )
    tenant.fault(**rule)
    ran = tenant.apply(plan)
    assert ran.code in {ExitCode.SUCCESS, ExitCode.FINISHED_WITH_FAILURES}, ran.err
    rows = tenant.report()
    assert not {"planned", "intent"} & set(statuses(rows)), statuses(rows)
    resets = [
        count for (_, effect), count in tenant.effects().items() if effect == "password_reset"
    ]
    assert resets and max(resets) == 1


def test_access_pass_lost_in_transit_is_reissued(tenant: Tenant) -> None:
    """A pass Graph created but we never received is issued again; the new one is in hand."""
    tenant.fault(
        kind="status",
        status=500,
        when="after",
        path="/users/*/authentication/temporaryAccessPassMethods",
        count=1,
    )
    plan = tenant.plan(
        "version: 1\nname: tap\nactions: [create_temporary_access_pass]\n"
        "targets:\n  - user: adele.vance@contoso.com\nsafety: {required_approvals: 0, canary: 0}\n"
    )
    ran = tenant.apply(plan)
    assert ran.code == ExitCode.SUCCESS, ran.err
    user = tenant.user_id("adele.vance@contoso.com")
    assert tenant.effects()[(user, "tap_created")] == 2
    (secret,) = secrets_of(tenant.run_dir())
    assert secret["kind"] == "temporary_access_pass"


def test_drift_skips_the_changed_target(tenant: Tenant) -> None:
    """A target whose UPN changed since planning is drifted; nothing is sent to it."""
    plan = tenant.plan(BREACH)
    megan = tenant.user_id("megan.bowen@contoso.com")
    tenant.admin.patch(f"/users/{megan}", json={"userPrincipalName": "megan.b@contoso.com"})
    ran = tenant.apply(plan)
    assert ran.code == ExitCode.SUCCESS, ran.err
    drifted = [row for row in tenant.report() if row["status"] == "drifted"]
    assert {row["action"] for row in drifted} == {
        "reset_password",
        "revoke_sessions",
        "require_mfa_reregistration",
    }
    assert drifted[0]["reason"] == (
        "changed since planning: UPN megan.bowen@contoso.com → megan.b@contoso.com"
    )
    assert not [key for key in tenant.effects() if key[0] == megan]


def test_drift_abort_stops_the_run(tenant: Tenant) -> None:
    """--on-drift abort: a target that became privileged stops the run with exit 3."""
    plan = tenant.plan(BREACH)
    adele = tenant.user_id("adele.vance@contoso.com")
    tenant.admin.post("/roles/Security Administrator/members", json={"id": adele})
    ran = tenant.apply(plan, "--on-drift", "abort")
    assert ran.code == ExitCode.REFUSED
    assert (
        "aborted on drift: adele.vance@contoso.com: changed since planning: "
        "privileged roles none → Security Administrator" in ran.err
    )
    assert tenant.ledger() == []


def test_canary_failure_halts_before_the_rest(tenant: Tenant) -> None:
    """A failing canary stops the run (exit 4) before any other target is touched."""
    plan = tenant.plan(
        "version: 1\nname: c\nactions: [disable_account]\ntargets:\n"
        "  - user: erik.dang@contoso.com\n  - user: adele.vance@contoso.com\n"
        "safety: {required_approvals: 0, canary: 1}\n"
    )
    ran = tenant.apply(plan)
    assert ran.code == ExitCode.HALTED
    assert "halted: canary: 1 of 1 canary items failed or stayed unknown" in ran.err
    assert tenant.ledger() == []


def test_failure_rate_halts_the_run(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More permanent failures than halt_on_failure_rate (after 20 items) stop the run:
    the batches in flight finish, nothing new is sent, the rest stays planned."""
    tenant = tenant_for(emulator_factory(users=400), tmp_path, monkeypatch)
    plan = tenant.plan(
        "version: 1\nname: h\nactions: [revoke_sessions]\ntargets:\n  - group: All Staff\n"
        "safety: {required_approvals: 0, canary: 0, halt_on_failure_rate: 0.05, max_targets: 900}\n"
    )
    tenant.fault(kind="status", status=403, path="/users/*/revokeSignInSessions", rate=0.5, seed=2)
    ran = tenant.apply(plan, "--confirm-count", str(acting_targets(plan)))
    assert ran.code == ExitCode.HALTED, ran.err
    assert "more than the plan's halt_on_failure_rate of 5%" in ran.err
    assert statuses(tenant.report())["planned"] > 0


def test_more_than_fifty_users_need_the_exact_count(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above 50 users, --confirm-count must equal the count; nothing is sent otherwise."""
    tenant = tenant_for(emulator_factory(users=120), tmp_path, monkeypatch)
    plan = tenant.plan(
        "version: 1\nname: big\nactions: [revoke_sessions]\ntargets:\n  - group: All Staff\n"
        "safety: {required_approvals: 0, max_targets: 500}\n"
    )
    acting = acting_targets(plan)
    assert acting > 50
    ran = tenant.apply(plan, "--confirm-count", str(acting - 1))
    assert ran.code == ExitCode.REFUSED
    assert ran.err == (
        f"error: the plan acts on {acting} users, more than 50: confirm with --confirm-count "
        f"{acting} (--confirm-count {acting - 1} was given)\n"
        "hint: the number must equal the plan's count of users\n"
    )
    assert tenant.ledger() == []


def test_a_wrong_confirm_count_is_refused_for_a_small_plan_too(tenant: Tenant) -> None:
    """A --confirm-count that is given must be right even under 50 users (a stale count in a
    scheduled job); nothing is sent."""
    plan = tenant.plan(BREACH)
    acting = acting_targets(plan)
    ran = tenant.apply(plan, "--confirm-count", str(acting + 4))
    assert ran.code == ExitCode.REFUSED
    assert ran.err == (
        f"error: --confirm-count {acting + 4} was given, but the plan acts on {acting} users\n"
        "hint: the number must equal the plan's count of users\n"
    )
    assert tenant.ledger() == []


def test_resume_of_a_folder_that_is_not_a_run_is_an_input_error(tenant: Tenant) -> None:
    """apply --resume of a wrong path is exit 2 (usage), as for status and report, not a
    storage error; the tenant sees no request."""
    ran = tenant.cli("--tenant", "emulator", "apply", "--resume", "runs/nope", "--yes")
    assert (ran.code, ran.err) == (
        ExitCode.INVALID_INPUT,
        "error: runs/nope: not a run folder (no such folder)\n"
        "hint: `entra-bulk runs` lists the runs under ./runs\n",
    )
    assert tenant.admin.get("/requests").json()["value"] == []


def test_unapproved_plan_is_refused(tenant: Tenant) -> None:
    """A plan that needs an approval it does not have is refused with exit 3."""
    plan = tenant.plan(BREACH.replace("required_approvals: 0", "required_approvals: 1"))
    ran = tenant.apply(plan)
    assert ran.code == ExitCode.REFUSED
    assert tenant.ledger() == []


def test_resume_completes_an_interrupted_run(tenant: Tenant) -> None:
    """A run stopped after its canary is finished by --resume, nothing done twice."""
    plan = tenant.plan(HR.format(actions="reset_password, disable_account"))
    tenant.fault(kind="status", status=503, path="**", method="PATCH", rate=1.0, skip=6)
    first = tenant.apply(plan)
    assert first.code == ExitCode.HALTED, first.err
    tenant.admin.delete("/faults")
    run_dir = tenant.run_dir()
    second = tenant.cli("--tenant", "emulator", "apply", "--resume", str(run_dir))
    assert second.code in {ExitCode.SUCCESS, ExitCode.FINISHED_WITH_FAILURES}, second.err
    rows = tenant.report(run_dir)
    assert not {"planned", "intent", "unknown"} & set(statuses(rows))
    resets = [n for (_, effect), n in tenant.effects().items() if effect == "password_reset"]
    assert max(resets) == 1


def _cli_process(
    tenant: Tenant, *args: str, crash_at: str | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`entra-bulk --tenant emulator ARGS` in a child process (killing itself at `crash_at`)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "ENTRA_BULK_CRASH_AT"}}
    env.update(PYTHONPATH=str(ROOT), NO_COLOR="1")
    if crash_at is not None:
        env["ENTRA_BULK_CRASH_AT"] = crash_at
    argv = [sys.executable, "-m", "runner", "--tenant", "emulator", *args]
    return subprocess.run(
        argv, cwd=tenant.folder, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _statuses_in_journal(run_dir: Path) -> dict[str, set[str]]:
    """Each UPN's item statuses, read from the run's journal."""
    found: dict[str, set[str]] = {}
    with Journal.open(run_dir) as journal:
        for item in journal.items():
            found.setdefault(item.upn, set()).add(str(item.status))
    return found


TWO_ACTIONS = """version: 1
name: two
actions: [reset_password, revoke_sessions]
targets:
  - user: adele.vance@contoso.com
  - user: alex.wilber@contoso.com
  - user: megan.bowen@contoso.com
safety: {required_approvals: 0, canary: 1}
"""


@pytest.mark.parametrize(
    ("args", "first_code"),
    [
        (("--no-canary",), ExitCode.FINISHED_WITH_FAILURES),
        ((), ExitCode.FINISHED_WITH_FAILURES),
        (("--no-canary", "--on-drift", "abort"), ExitCode.REFUSED),
    ],
)
def test_resume_ends_unknown_items_of_a_deleted_user(
    tenant: Tenant, args: tuple[str, ...], first_code: ExitCode
) -> None:
    """A user deleted while their reset's outcome was unknown: --resume fails that item (no
    loop), drifts the rest of the user, and ends the run (after an abort, the next resume)."""
    plan = tenant.plan(TWO_ACTIONS)
    crashed = _cli_process(
        tenant, "apply", str(plan), "--yes", *args, crash_at="after_send_before_outcome"
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run_dir = tenant.run_dir()
    assert "intent" in _statuses_in_journal(run_dir)["adele.vance@contoso.com"]
    adele = tenant.user_id("adele.vance@contoso.com")
    assert tenant.admin.delete(f"/users/{adele}").status_code == 204
    resumed = _cli_process(tenant, "apply", "--resume", str(run_dir), timeout_s=60)
    assert resumed.returncode == first_code, resumed.stderr
    if first_code == ExitCode.REFUSED:
        assert "aborted on drift: adele.vance@contoso.com: the user no longer exists" in (
            resumed.stderr
        )
        resumed = _cli_process(tenant, "apply", "--resume", str(run_dir), timeout_s=60)
        assert resumed.returncode == ExitCode.FINISHED_WITH_FAILURES, resumed.stderr
    rows = tenant.report(run_dir)
    assert not {"planned", "intent", "unknown"} & set(statuses(rows)), statuses(rows)
    gone = {row["action"]: row for row in rows if row["object_id"] == adele}
    assert gone["reset_password"]["status"] == "failed"
    assert gone["reset_password"]["error_message"] == "the user no longer exists"
    assert gone["revoke_sessions"]["status"] in {"failed", "drifted"}
    others = [row["status"] for row in rows if row["object_id"] != adele]
    assert set(others) == {"verified"}, others
    resets = [n for (_, effect), n in tenant.effects().items() if effect == "password_reset"]
    assert max(resets) == 1


def test_resume_reconciles_unknown_items_of_a_changed_user(tenant: Tenant) -> None:
    """A user renamed while their reset's outcome was unknown: the read-back shows it applied,
    so --resume records it succeeded (not re-sent, not drifted) and the rest drifted."""
    plan = tenant.plan(TWO_ACTIONS)
    crashed = _cli_process(
        tenant, "apply", str(plan), "--yes", "--no-canary", crash_at="after_send_before_outcome"
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    adele = tenant.user_id("adele.vance@contoso.com")
    tenant.admin.patch(f"/users/{adele}", json={"userPrincipalName": "adele.v@contoso.com"})
    resumed = _cli_process(tenant, "apply", "--resume", str(tenant.run_dir()), timeout_s=60)
    assert resumed.returncode == ExitCode.SUCCESS, resumed.stderr
    rows = {row["action"]: row for row in tenant.report() if row["object_id"] == adele}
    assert rows["reset_password"]["status"] == "verified"
    assert rows["revoke_sessions"]["status"] in {"verified", "drifted"}
    assert tenant.effects()[(adele, "password_reset")] == 1


def _apply_process(tenant: Tenant, plan: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "ENTRA_BULK_CRASH_AT"}}
    env.update(PYTHONPATH=str(ROOT), NO_COLOR="1")
    argv = [sys.executable, "-m", "runner", "--tenant", "emulator", "apply", str(plan), "--yes"]
    return subprocess.Popen(
        argv, cwd=tenant.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_same_plan_applied_twice_at_once_runs_once(tenant: Tenant) -> None:
    """F26: two `apply` of one plan started together: one runs, the other refuses (exit 3)."""
    plan = tenant.plan(TWO_ACTIONS)
    processes = [_apply_process(tenant, plan) for _ in range(2)]
    ended = [(p.wait(timeout=120), p.communicate()[1]) for p in processes]
    codes = sorted(code for code, _ in ended)
    assert codes == [ExitCode.SUCCESS, ExitCode.REFUSED], ended
    (refusal,) = [err for code, err in ended if code == ExitCode.REFUSED]
    (run_dir,) = (tenant.folder / "runs").iterdir()
    digest = json.loads(plan.read_text())["digest"]
    assert f"error: plan 'two' ({digest}) " in refusal
    assert f"in runs/{run_dir.name}" in refusal
    assert f"entra-bulk apply --resume runs/{run_dir.name}" in refusal
    resets = [n for (_, effect), n in tenant.effects().items() if effect == "password_reset"]
    assert resets == [1, 1, 1]


def test_applied_plan_is_not_applied_again(tenant: Tenant) -> None:
    """A plan whose run finished is refused (exit 3) by a second `apply`; nothing is sent."""
    plan = tenant.plan(TWO_ACTIONS)
    assert tenant.apply(plan).code == ExitCode.SUCCESS
    ledger = tenant.ledger()
    again = tenant.apply(plan)
    run = f"runs/{tenant.run_dir().name}"
    digest = json.loads(plan.read_text())["digest"]
    assert again.code == ExitCode.REFUSED
    assert again.err == (
        f"error: plan 'two' ({digest}) was already applied in {run}\n"
        f"hint: a plan is applied once (`entra-bulk status {run}` shows how it ended); to act on "
        "these users again, plan again and approve the new plan\n"
    )
    assert tenant.ledger() == ledger


def test_plan_of_a_crashed_run_points_to_resume(tenant: Tenant) -> None:
    """A plan whose run died unfinished is refused by `apply` (exit 3), pointing to --resume."""
    plan = tenant.plan(TWO_ACTIONS)
    crashed = _cli_process(tenant, "apply", str(plan), "--yes", crash_at="after_intent_commit")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    again = tenant.apply(plan)
    run = f"runs/{tenant.run_dir().name}"
    digest = json.loads(plan.read_text())["digest"]
    assert again.code == ExitCode.REFUSED
    assert again.err == (
        f"error: plan 'two' ({digest}) was already applied in {run}, and that run did not "
        "finish\n"
        f"hint: `entra-bulk apply --resume {run}` continues it: it reads back what is unknown "
        "and repeats nothing\n"
    )


def test_throttling_that_never_ends_halts_resumably(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429s use no step's attempts: when the run's retry budget runs out it halts (exit 4)
    with the throttled items still to send, and a resume sends them."""
    # time_scale: the pacer's budget refills faster after each 429 (the test takes seconds).
    emulator = emulator_factory(consistency_delay_s=0.3, time_scale=50.0)
    tenant = tenant_for(emulator, tmp_path, monkeypatch)
    plan = tenant.plan(TWO_ACTIONS)
    tenant.fault(
        kind="status",
        status=429,
        retry_after="decimal:0.01",
        method="POST",
        path="/users/*/revokeSignInSessions",
        rate=1.0,
    )
    ran = tenant.apply(plan, "--no-canary")
    run = f"runs/{tenant.run_dir().name}"
    assert ran.code == ExitCode.HALTED, ran.err
    assert (
        "halted: retries ran out: Graph failed too many requests in a row; Graph may be in an "
        f"outage — resume later; resume with entra-bulk apply --resume {run}\n" in ran.err
    )
    rows = tenant.report()
    assert {row["status"] for row in rows if row["action"] == "revoke_sessions"} == {"intent"}
    tenant.admin.delete("/faults")
    resumed = tenant.cli("--tenant", "emulator", "apply", "--resume", run)
    assert resumed.code == ExitCode.SUCCESS, resumed.err
    assert set(statuses(tenant.report())) == {"verified"}


def test_claims_challenge_gets_a_token_with_the_claims(tenant: Tenant) -> None:
    """F16: a 401 claims challenge on a write batch: one new token (with the claims), resent."""
    plan = tenant.plan(TWO_ACTIONS)
    tenant.fault(kind="claims_challenge", path="/$batch", count=1, skip=1)
    ran = tenant.apply(plan, "--no-canary")
    assert ran.code == ExitCode.SUCCESS, ran.err
    assert set(statuses(tenant.report())) == {"verified"}
    assert sorted(tenant.effects().values()) == [1] * 6


def test_token_refused_after_a_refresh_stops_the_run_resumably(tenant: Tenant) -> None:
    """F15: a 401 to the fresh token too stops the run (exit 5), nothing failed; resume ends it."""
    plan = tenant.plan(TWO_ACTIONS)
    tenant.fault(kind="token_expired", path="/$batch", count=2, skip=1)
    ran = tenant.apply(plan, "--no-canary")
    run = f"runs/{tenant.run_dir().name}"
    assert ran.code == ExitCode.AUTH, ran.err
    assert ran.err.endswith(
        "error: Graph refused a freshly acquired token too (401 InvalidAuthenticationToken: "
        "Lifetime validation failed, the token is expired.)\n"
        "hint: sign in again (or check the app's credentials), then "
        f"`entra-bulk apply --resume {run}`: what was not sent is sent then\n"
    ), ran.err
    assert tenant.ledger() == []
    resumed = tenant.cli("--tenant", "emulator", "apply", "--resume", run)
    assert resumed.code == ExitCode.SUCCESS, resumed.err
    assert set(statuses(tenant.report())) == {"verified"}
    assert sorted(tenant.effects().values()) == [1] * 6


def test_target_graph_refuses_to_read_fails_alone(tenant: Tenant) -> None:
    """F18: a 403 reading one target fails that target's items with Graph's answer; the rest
    of the run goes on."""
    plan = tenant.plan(TWO_ACTIONS)
    adele = tenant.user_id("adele.vance@contoso.com")
    tenant.fault(kind="status", status=403, method="GET", path=f"/users/{adele}")
    ran = tenant.apply(plan, "--no-canary")
    assert ran.code == ExitCode.FINISHED_WITH_FAILURES, ran.err
    rows = tenant.report()
    refused = [row for row in rows if row["object_id"] == adele]
    assert [(row["status"], row["http_status"], row["error_code"]) for row in refused] == [
        ("failed", "403", "Authorization_RequestDenied")
    ] * 2
    assert refused[0]["error_message"] == "Injected failure."
    assert refused[0]["reason"] == (
        "Graph refused to read the user (403 Authorization_RequestDenied: Injected failure.)"
    )
    assert {row["status"] for row in rows if row["object_id"] != adele} == {"verified"}
    assert not [key for key in tenant.effects() if key[0] == adele]


def test_a_reset_that_cannot_be_read_back_may_be_in_effect(tenant: Tenant) -> None:
    """A reset whose answer was lost on a user Graph then refuses to read: failed, never
    re-sent, and its password is 'may be in effect' (not 'never set', not handed over); the
    user's other change is not verified at once, with Graph's answer, without waiting."""
    plan = tenant.plan(TWO_ACTIONS)
    adele = tenant.user_id("adele.vance@contoso.com")
    tenant.fault(kind="status", status=504, when="after", method="PATCH", path=f"/users/{adele}")
    tenant.fault(kind="status", status=403, method="GET", path=f"/users/{adele}", skip=1)
    ran = tenant.apply(plan, "--no-canary")
    assert ran.code == ExitCode.FINISHED_WITH_FAILURES, ran.err
    (reset,) = [
        row
        for row in tenant.report()
        if row["object_id"] == adele and row["action"] == "reset_password"
    ]
    assert (reset["status"], reset["error_code"], reset["secret_state"]) == (
        "failed",
        "OutcomeUnknown",
        "may be in effect",
    )
    assert tenant.effects()[(adele, "password_reset")] == 1
    (revoke,) = [
        row
        for row in tenant.report()
        if row["object_id"] == adele and row["action"] == "revoke_sessions"
    ]
    assert (revoke["status"], revoke["reason"]) == (
        "succeeded",
        "not verified: Graph refused to read the user back (403 Authorization_RequestDenied: "
        "Injected failure.)",
    )
    assert [line for line in ran.err.splitlines() if line.startswith("Secrets that may")] == [
        f"Secrets that may be in effect: 1 in secrets.csv, of items {reset['item']} "
        "(adele.vance@contoso.com): Graph may have made the change but it could not be read "
        "back; check the user in the portal before handing one over or resetting again"
    ]


def test_graph_refusing_every_read_stops_the_run(tenant: Tenant) -> None:
    """Graph refusing to read every target and any list of users (permission lost) stops the
    run with exit 5."""
    plan = tenant.plan(TWO_ACTIONS)
    tenant.fault(kind="status", status=403, method="GET", path="/users/*")
    tenant.fault(kind="status", status=403, method="GET", path="/users")
    ran = tenant.apply(plan, "--no-canary")
    assert ran.code == ExitCode.AUTH, ran.err
    run = f"runs/{tenant.run_dir().name}"
    assert ran.err.endswith(
        "error: Graph refused to read all 3 users asked for (e.g. 403 "
        "Authorization_RequestDenied: Injected failure.)\n"
        "hint: check that the app (or you) may still read users, then "
        f"`entra-bulk apply --resume {run}`\n"
    ), ran.err
    assert tenant.ledger() == []


def test_users_graph_may_not_read_fail_alone_when_others_can_be_read(tenant: Tenant) -> None:
    """Every target refused (a restricted administrative unit, say) while users can still be
    listed: their items fail with Graph's answer, the run is not stopped for lost permission."""
    plan = tenant.plan(TWO_ACTIONS)
    tenant.fault(kind="status", status=403, method="GET", path="/users/*")
    ran = tenant.apply(plan, "--no-canary")
    assert ran.code == ExitCode.FINISHED_WITH_FAILURES, ran.err
    assert {(row["status"], row["http_status"]) for row in tenant.report()} == {("failed", "403")}
    assert tenant.ledger() == []


def test_interrupt_during_verification_leaves_items_to_verify_on_resume(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the changes are read back: exit 130 (and status says so), nothing marked
    unverified; the printed resume command verifies them."""
    # Graph shows each change 3 s late: the verification is still waiting when SIGINT comes.
    tenant = tenant_for(emulator_factory(consistency_delay_s=3.0), tmp_path, monkeypatch)
    plan = tenant.plan(TWO_ACTIONS)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "ENTRA_BULK_CRASH_AT"}}
    env.update(PYTHONPATH=str(ROOT), NO_COLOR="1")
    argv = [sys.executable, "-m", "runner", "--tenant", "emulator", "apply", str(plan), "--yes"]
    process = subprocess.Popen(
        [*argv, "--no-canary"],
        cwd=tenant.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        runs = list((tenant.folder / "runs").glob("*/journal.sqlite"))
        found = set().union(*_statuses_in_journal(runs[0].parent).values()) if runs else set()
        if found and found <= {"succeeded", "verified"} and "succeeded" in found:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    run = f"runs/{tenant.run_dir().name}"
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert f"interrupted; resume with entra-bulk apply --resume {run}\n" in err
    with Journal.open(tenant.run_dir()) as journal:
        left = {(item.action, str(item.status), item.verified) for item in journal.items()}
    assert ("revoke_sessions", "succeeded", None) in left, left
    assert not [item for item in left if item[2] is False], left
    status = tenant.cli("status", run, "--events", "0")
    assert [line for line in status.out.splitlines() if line.startswith("outcome")] == [
        "outcome    interrupted (exit 130): verification not finished; interrupted (Ctrl-C or "
        "SIGTERM); what was in flight is recorded"
    ]
    # The command as printed, without --tenant: the run knows it is the emulated tenant's.
    resumed = tenant.cli("apply", "--resume", run)
    assert resumed.code == ExitCode.SUCCESS, resumed.err
    assert set(statuses(tenant.report())) == {"verified"}

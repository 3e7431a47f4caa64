"""The fault matrix of reliability.md Part 2 §2.1: one scenario per fault the emulated tenant
(or this machine) can produce, each applied through the CLI (a child process) to a plan of
the five actions, resumed until it ends, and checked with `campaign_support.check_run`.

Each scenario names its faults (emulator rules, or a `drive` that does something else: a
change behind the runner's back, a signal, a second process, a full disk) and what it must
show besides the common invariants (`expect`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.campaigns.campaign_support import (
    ACTIONS,
    FULL,
    USERS,
    CampaignTenant,
    Findings,
    GraphProxy,
    Ran,
    check_run,
    only_run_dir,
    plan_text,
)

WRITES = ("POST", "PATCH", "DELETE")
RESUMES = 6


@dataclass
class Outcome:
    """What a scenario's processes did."""

    runs: list[Ran] = field(default_factory=list)
    run_dir: Path | None = None
    injected: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kills: int = 0
    seconds: float = 0.0


Drive = Callable[["Scenario", CampaignTenant, Path, Path], Outcome]
Expect = Callable[[CampaignTenant, Outcome, Findings], list[str]]


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One row of the matrix."""

    fid: str
    title: str
    rules: tuple[dict[str, Any], ...] = ()
    drive: Drive | None = None
    expect: Expect | None = None
    first_codes: frozenset[int] = frozenset({0, 1})
    aborts: bool = False  # the run stops for good (exit 3): items stay planned, nothing sent
    slow: bool = False
    known_bug: str | None = None  # a finding reported to its owner: printed, not failed here
    runner_skew_s: float = 0.0  # the runner's clock ahead of the tenant's (libfaketime)
    plan_extra: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)


def writes_rule(**rule: Any) -> tuple[dict[str, Any], ...]:
    """The same rule for every write method (a rule names one method)."""
    return tuple({**rule, "method": method} for method in WRITES)


# --- driving ---------------------------------------------------------------------------------


def resume_to_end(tenant: CampaignTenant, outcome: Outcome, run_dir: Path) -> None:
    """`apply --resume` until the run ends (exit 0 or 1)."""
    for _ in range(RESUMES):
        if outcome.runs and outcome.runs[-1].code in (0, 1):
            return
        outcome.runs.append(tenant.cli("apply", "--resume", str(run_dir)))


def first_apply(
    tenant: CampaignTenant, plan: Path, runs: Path, *extra: str, **kwargs: Any
) -> tuple[Ran, Path | None]:
    ran = tenant.cli("apply", str(plan), "--yes", "--run-dir", str(runs), *extra, **kwargs)
    return ran, only_run_dir(runs)


def plain(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """Add the scenario's rules, apply, clear the faults, resume until the run ends."""
    outcome = Outcome()
    adele = tenant.user_id(USERS[0])
    for rule in scenario.rules:
        tenant.fault(
            **{k: v.replace("{ADELE}", adele) if isinstance(v, str) else v for k, v in rule.items()}
        )
    ran, run_dir = first_apply(tenant, plan, runs)
    outcome.runs.append(ran)
    outcome.run_dir = run_dir
    outcome.injected = tenant.faults_injected()
    if ran.code not in scenario.first_codes:
        outcome.problems.append(f"first apply exited {ran.code}: {ran.err[-400:]}")
    tenant.admin.delete("/faults")
    if run_dir is not None:
        resume_to_end(tenant, outcome, run_dir)
    return outcome


def run_scenario(
    scenario: Scenario, tenant: CampaignTenant, work: Path, *, users: Sequence[str] = USERS[:3]
) -> tuple[Outcome, Findings | None]:
    """Reset the tenant, plan, drive the scenario, check the run."""
    tenant.reset()
    if scenario.emulator:
        tenant.admin.patch("/config", json=scenario.emulator)
    folder = work / scenario.fid
    folder.mkdir(parents=True, exist_ok=True)
    extra = {"canary": 0, "halt_on_failure_rate": 1.0, **scenario.plan_extra}
    canary = int(extra.pop("canary"))
    plan = tenant.plan(plan_text(scenario.fid.lower(), users, canary=canary, **extra), scenario.fid)
    drive = scenario.drive or plain
    started = time.monotonic()
    try:
        outcome = drive(scenario, tenant, plan, folder / "runs")
    finally:
        if scenario.emulator:
            tenant.admin.patch("/config", json={"latency_ms": "0:0"})
    outcome.seconds = time.monotonic() - started
    findings = None
    if outcome.run_dir is not None:
        findings = check_run(
            tenant,
            outcome.run_dir,
            torn_allowed=outcome.kills,
            final=not scenario.aborts,
            runner_skew_s=scenario.runner_skew_s,
        )
        last = outcome.runs[-1].code if outcome.runs else None
        if scenario.aborts:
            if tenant.ledger():
                findings.fail("the aborted run changed the tenant")
        elif last not in (0, 1):
            findings.fail(f"the run did not end: exit codes {[r.code for r in outcome.runs]}")
        for ran in outcome.runs:
            if "internal error" in ran.err or "Traceback" in ran.err:
                findings.fail(f"internal error: {ran.err[-300:]}")
    if scenario.expect is not None and findings is not None:
        outcome.problems += scenario.expect(tenant, outcome, findings)
    return outcome, findings


# --- expectations ---------------------------------------------------------------------------


def advised_window_violations(tenant: CampaignTenant, seconds: float) -> int:
    """Requests that reached the tenant inside a 429's advised window (`seconds` after the
    throttled item's batch), other than those already in flight (sent before the answer)."""
    rows = tenant.requests()
    envelopes = {r["seq"]: r for r in rows if r["path"] == "/$batch" and r["batch"] is None}
    ends: dict[int, str] = {}
    for r in rows:
        if r["batch"] is not None:
            ends[r["batch"]] = max(ends.get(r["batch"], ""), r["time"])
    throttled = sorted({r["batch"] for r in rows if r["status"] == 429 and r["batch"]})
    violations = 0
    for batch in throttled:
        # A batch that reaches the tenant within 0.25 s of the answer may have left before the
        # runner read it (a loaded machine delays arrivals); later ones were sent after it.
        answered = _time(ends[batch]) + dt.timedelta(seconds=0.25)
        until = _time(ends[batch]) + dt.timedelta(seconds=seconds * 0.95)
        for seq, envelope in envelopes.items():
            if seq != batch and answered < _time(envelope["time"]) < until:
                violations += 1
    return violations


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def no_window_violation(seconds: float) -> Expect:
    def expect(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
        found = advised_window_violations(tenant, seconds)
        outcome.notes.append(f"advised-window violations {found}")
        return [f"{found} requests inside an advised window"] if found else []

    return expect


def all_verified(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
    bad = {k: v for k, v in findings.statuses.items() if k not in {"verified", "noop"}}
    return [f"not all verified: {dict(findings.statuses)}"] if bad else []


def events_of(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    from runner.journal import Journal

    journal = Journal.open(run_dir)
    try:
        return [dict(e.detail) for e in journal.events(kind)]
    finally:
        journal.close()


# --- special drives -----------------------------------------------------------------------------


def drift(change: Callable[[CampaignTenant, str], None], *extra: str) -> Drive:
    """Change the first target behind the runner's back between plan and apply."""

    def drive(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
        outcome = Outcome()
        target = tenant.user_id(USERS[0])
        change(tenant, target)
        ran, run_dir = first_apply(tenant, plan, runs, *extra)
        outcome.runs.append(ran)
        outcome.run_dir = run_dir
        outcome.injected = 1
        sent = [r for r in tenant.write_items() if target in r["path"]]
        outcome.notes.append(f"writes to the changed target {len(sent)}")
        if sent:
            outcome.problems.append(f"{len(sent)} writes sent to the changed target")
        if ran.code not in scenario.first_codes:
            outcome.problems.append(f"apply exited {ran.code}: {ran.err[-300:]}")
        return outcome

    return drive


def delete_user(tenant: CampaignTenant, user: str) -> None:
    assert tenant.admin.delete(f"/users/{user}").status_code in {200, 204}


def rename_user(tenant: CampaignTenant, user: str) -> None:
    response = tenant.admin.patch(f"/users/{user}", json={"userPrincipalName": "moved@contoso.com"})
    assert response.status_code in {200, 204}


def make_privileged(tenant: CampaignTenant, user: str) -> None:
    response = tenant.admin.post("/roles/Security Administrator/members", json={"id": user})
    assert response.status_code in {200, 201, 204}


def interrupt(sig: int) -> Drive:
    """SIGINT or SIGTERM mid-run (latency keeps the run going): exit 130, then resume."""

    def drive(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
        outcome = Outcome()
        journal_made = lambda: any(runs.glob("*/journal.sqlite"))  # noqa: E731
        while_running = tenant.cli(
            "apply",
            str(plan),
            "--yes",
            "--run-dir",
            str(runs),
            kill_when=journal_made,
            signal_after_s=(0.6, sig),
        )
        outcome.runs.append(while_running)
        outcome.run_dir = only_run_dir(runs)
        outcome.injected = 1
        if while_running.code != 130:
            outcome.problems.append(f"exit {while_running.code} after the signal, not 130")
        assert outcome.run_dir is not None
        findings = check_run(tenant, outcome.run_dir, final=False)
        open_now = sum(findings.statuses[s] for s in ("planned", "intent", "unknown"))
        outcome.notes.append(f"open items at the signal {open_now}")
        resume_to_end(tenant, outcome, outcome.run_dir)
        return outcome

    return drive


def refused(seconds: float) -> Drive:
    """F8: Graph's host refuses connections for `seconds` from the first secret on (a
    loopback proxy stops listening; exchanges under way finish): the requests were not
    sent, so they are retried after a pause, and the run ends as if nothing happened."""

    def drive(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
        outcome = Outcome()
        proxy = GraphProxy(int(tenant.emulator.graph_url.rsplit(":", 1)[1]))
        env = tenant.env(ENTRA_BULK_EMULATOR=str(proxy.connection_file(tenant)))

        def outage() -> None:
            deadline = time.monotonic() + 30
            while not any(runs.glob("*/secrets.csv")) and time.monotonic() < deadline:
                time.sleep(0.002)
            proxy.down()
            time.sleep(seconds)
            proxy.up()

        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        try:
            ran, run_dir = first_apply(tenant, plan, runs, env=env)
            thread.join()
            outcome.runs.append(ran)
            outcome.run_dir = run_dir
            outcome.injected = 1
            if run_dir is not None:
                paused = events_of(run_dir, "pause")
                outcome.notes.append(f"pauses {len(paused)}; exit {ran.code}")
                for _ in range(RESUMES):
                    if outcome.runs[-1].code in (0, 1):
                        break
                    outcome.runs.append(tenant.cli("apply", "--resume", str(run_dir), env=env))
        finally:
            proxy.close()
        return outcome

    return drive


FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def skewed(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """F28: the runner's clock runs 10 minutes ahead of Graph's (libfaketime in the child
    process only) while every PATCH answers 504 after the change: the reconciliation must
    date intents by Graph's clock, or it reads the resets back as not done."""
    outcome = Outcome()
    if not FAKETIME.exists():
        outcome.notes.append("not run: libfaketime is not installed (apt-get install faketime)")
        return outcome
    env = tenant.env(
        LD_PRELOAD=str(FAKETIME),
        FAKETIME=f"+{scenario.runner_skew_s:g}s",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        DONT_FAKE_MONOTONIC="1",
        FAKETIME_FORCE_MONOTONIC_FIX="1",
    )
    tenant.fault(kind="status", status=504, when="after", method="PATCH")
    ran, run_dir = first_apply(tenant, plan, runs, env=env)
    outcome.runs.append(ran)
    outcome.run_dir = run_dir
    outcome.injected = tenant.faults_injected()
    tenant.admin.delete("/faults")
    if run_dir is not None:
        from runner.journal import Journal

        journal = Journal.open(run_dir)
        try:
            sources = Counter(str(step.intent_time_source) for step in journal.steps())
        finally:
            journal.close()
        outcome.notes.append(f"intent times: {dict(sources)}")
        if sources.get("local"):
            outcome.problems.append(f"intents dated by the skewed local clock: {dict(sources)}")
    return outcome


def outage(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """F29: every write answers 503 without Retry-After (maybe executed; here, never) until
    the retry budget runs out: the run pauses (exit 4) and a resume after the outage ends it.
    (With ENTRA_BULK_FULL=1 the whole `$batch` endpoint fails, reads too.)"""
    outcome = Outcome()
    if FULL:
        tenant.fault(kind="batch_status", status=503, body=False, path="/$batch")
    else:
        for method in WRITES:
            tenant.fault(kind="status", status=503, method=method)
    started = time.monotonic()
    ran, run_dir = first_apply(tenant, plan, runs)
    outage_s = time.monotonic() - started
    outcome.runs.append(ran)
    outcome.run_dir = run_dir
    outcome.injected = tenant.faults_injected()
    minutes = max(outage_s / 60, 1e-9)
    outcome.notes.append(
        f"exit {ran.code} after {outage_s:.1f} s; batches during the outage "
        f"{outcome.injected} ({outcome.injected / minutes:.0f}/min)"
    )
    if ran.code != 4:
        outcome.problems.append(f"exit {ran.code} during the outage, not 4: {ran.err[-300:]}")
    tenant.admin.delete("/faults")
    if run_dir is not None:
        resume_to_end(tenant, outcome, run_dir)
    return outcome


def second_writer(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """F26: a second `apply --resume` of a run that is going on refuses, naming the holder;
    F27: after the holder is SIGKILLed, a wrong --force-unlock id is refused and a resume
    takes the dead holder's lock over."""
    outcome = Outcome()
    env = tenant.env()
    argv = [*_runner(), "apply", str(plan), "--yes", "--run-dir", str(runs)]
    first = subprocess.Popen(
        argv, cwd=tenant.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not any(runs.glob("*/journal.sqlite")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    run_dir = only_run_dir(runs)
    assert run_dir is not None
    outcome.run_dir = run_dir
    second = tenant.cli("apply", "--resume", str(run_dir))
    outcome.runs.append(second)
    if second.code != 3 or f"pid {first.pid}" not in second.err:
        outcome.problems.append(f"second writer: exit {second.code}: {second.err[-300:]}")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    outcome.kills = 1
    wrong = tenant.cli("apply", "--resume", str(run_dir), "--force-unlock", "not-the-lock-id")
    outcome.runs.append(wrong)
    if wrong.code != 3 or "does not match the lock" not in wrong.err:
        outcome.problems.append(f"wrong lock id: exit {wrong.code}: {wrong.err[-300:]}")
    take_over = tenant.cli("apply", "--resume", str(run_dir))
    outcome.runs.append(take_over)
    if "took over the lock" not in take_over.err:
        outcome.problems.append(f"no takeover said: {take_over.err[-300:]}")
    outcome.injected = 2
    outcome.notes.append("second writer refused; dead holder taken over")
    resume_to_end(tenant, outcome, run_dir)
    return outcome


def _runner() -> list[str]:
    import sys

    return [sys.executable, "-m", "runner", "--tenant", "emulator"]


def full_disk(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """F25: the run folder's file system fills up mid-run (a small tmpfs, filled by another
    file once the journal exists): apply stops with exit 6 and nothing is sent without a
    committed intent; with space again, a resume ends the run."""
    outcome = Outcome()
    runs.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(runs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        outcome.notes.append(f"not run: cannot mount a tmpfs ({mounted.stderr.strip()})")
        return outcome
    filler = runs / "filler"
    try:

        def fill() -> bool:
            # Once the first secret is on disk: the journal exists and work has begun.
            if not any(runs.glob("*/secrets.csv")):
                return False
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 65536):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            return True

        ran = tenant.cli("apply", str(plan), "--yes", "--run-dir", str(runs), kill_when=fill)
        outcome.runs.append(ran)
        run_dir = next(p for p in runs.iterdir() if p.is_dir())
        outcome.run_dir = run_dir
        outcome.injected = 1
        outcome.notes.append(f"exit {ran.code} on the full disk")
        if ran.code != 6:
            outcome.problems.append(f"exit {ran.code} on a full disk, not 6: {ran.err[-300:]}")
        filler.unlink()
        resume_to_end(tenant, outcome, run_dir)
        copy = runs.parent / "run-copy"
        shutil.copytree(run_dir, copy)
        outcome.run_dir = copy
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)
    return outcome


def bad_ca(scenario: Scenario, tenant: CampaignTenant, plan: Path, runs: Path) -> Outcome:
    """F32: a TLS-intercepting middlebox (the token host's certificate is not from the CA the
    profile trusts): a clear error, no retries, nothing sent."""
    outcome = Outcome()
    info = json.loads(tenant.emulator.connection_file.read_text())
    other = tenant.folder / "other-ca.pem"
    other.write_text(_self_signed_ca())
    info["ca_file"] = str(other)
    intercepted = tenant.folder / "intercepted-emulator.json"
    intercepted.write_text(json.dumps(info))
    ran = tenant.cli(
        "apply",
        str(plan),
        "--yes",
        "--run-dir",
        str(runs),
        env=tenant.env(ENTRA_BULK_EMULATOR=str(intercepted)),
    )
    outcome.runs.append(ran)
    outcome.injected = 1
    outcome.notes.append(f"exit {ran.code}: {ran.err.strip().splitlines()[0][:90]}")
    if ran.code not in {5} or "Traceback" in ran.err or tenant.ledger():
        outcome.problems.append(f"exit {ran.code}: {ran.err[-300:]}")
    return outcome


def _self_signed_ca() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interception proxy")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# --- the matrix -----------------------------------------------------------------------------------

F4_SECONDS = 31.5 if FULL else 3.15


def _retry_waited(seconds: float) -> Expect:
    def expect(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
        rows = [r for r in tenant.requests() if r["batch"] is not None and r["method"] in WRITES]
        throttled = [r for r in rows if r["status"] == 429]
        if not throttled:
            return ["no 429 was met"]
        first = throttled[0]
        later = [r for r in rows if r["path"] == first["path"] and r["seq"] > first["seq"]]
        if not later:
            return ["the throttled request was never retried"]
        waited = (_time(later[0]["time"]) - _time(first["time"])).total_seconds()
        outcome.notes.append(f"retried after {waited:.2f} s")
        return [] if waited >= seconds * 0.95 else [f"retried after {waited:.2f} s < {seconds}"]

    return expect


def _slowed(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
    assert outcome.run_dir is not None
    slow = events_of(outcome.run_dir, "slow_down")
    throttled = [r for r in tenant.requests() if r["status"] == 429]
    outcome.notes.append(f"slow-downs {len(slow)}, 429s {len(throttled)}")
    problems = [] if slow else ["no slow-down on the warning header"]
    return problems + ([f"{len(throttled)} 429s"] if throttled else [])


def _one_attempt(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
    from runner.journal import Journal

    assert outcome.run_dir is not None
    journal = Journal.open(outcome.run_dir)
    try:
        target = [i for i in journal.items() if i.upn == USERS[0]]
    finally:
        journal.close()
    bad = [i for i in target if i.action != "require_mfa_reregistration" and i.attempts > 1]
    failed = [i for i in target if i.status == "failed"]
    outcome.notes.append(f"403 items failed {len(failed)}, retried {len(bad)}")
    return [f"403 retried: {[(i.action, i.attempts) for i in bad]}"] if bad or not failed else []


def _default_last(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
    refused = [r for r in tenant.write_items() if r["method"] == "DELETE" and r["status"] == 400]
    outcome.notes.append(f"DELETEs refused by the default-method rule {len(refused)}")
    bad = findings.statuses.get("failed", 0)
    return [f"{len(refused)} default-method 400s, {bad} failed"] if refused or bad else []


def _drifted(abort: bool) -> Expect:
    def expect(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
        drifted = findings.statuses.get("drifted", 0)
        if abort:
            return [] if outcome.runs[0].code == 3 and not tenant.ledger() else ["no abort"]
        return [] if drifted == len(ACTIONS) else [f"drifted {drifted}, not {len(ACTIONS)}"]

    return expect


def _canary_halt(tenant: CampaignTenant, outcome: Outcome, findings: Findings) -> list[str]:
    first = outcome.runs[0]
    others = [r for r in tenant.ledger() if r["user_id"] != tenant.user_id(USERS[0])]
    outcome.notes.append(f"exit {first.code}; effects on other targets before resume {len(others)}")
    if first.code != 4 or "canary" not in first.err:
        return [f"canary did not halt: {first.code} {first.err[-200:]}"]
    return []


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        fid="F1",
        title="429 storm on writes (Retry-After 1 s)",
        rules=writes_rule(kind="status", status=429, retry_after="int:1", count=4),
        expect=no_window_violation(1.0),
    ),
    Scenario(
        fid="F2a",
        title="Retry-After decimal 0.4 (2.128 scaled)",
        rules=writes_rule(kind="status", status=429, retry_after="decimal:0.4", rate=0.3, seed=2),
        expect=no_window_violation(0.4),
    ),
    Scenario(
        fid="F2b",
        title="Retry-After 0",
        rules=writes_rule(kind="status", status=429, retry_after="0", rate=0.3, seed=3),
    ),
    Scenario(
        fid="F2c",
        title="Retry-After -5",
        rules=writes_rule(kind="status", status=429, retry_after="-5", rate=0.3, seed=4),
    ),
    Scenario(
        fid="F2d",
        title="Retry-After HTTP date in the past",
        rules=writes_rule(kind="status", status=429, retry_after="http-date:-30", count=2),
    ),
    Scenario(
        fid="F2e",
        title="Retry-After HTTP date +2 s",
        rules=writes_rule(kind="status", status=429, retry_after="http-date:+2", count=1),
        expect=no_window_violation(1.0),
    ),
    Scenario(
        fid="F2f",
        title="Retry-After 'abc'",
        rules=writes_rule(kind="status", status=429, retry_after="abc", count=2),
    ),
    Scenario(
        fid="F2g",
        title="Retry-After duplicated '1, 2'",
        rules=writes_rule(kind="status", status=429, retry_after="1, 2", count=1),
        expect=no_window_violation(2.0),
    ),
    Scenario(
        fid="F3",
        title="429 without Retry-After",
        rules=writes_rule(kind="status", status=429, retry_after="missing", count=2),
    ),
    Scenario(
        fid="F4",
        title=f"Retry-After 315 s (scaled: {F4_SECONDS} s)",
        rules=(
            {
                "kind": "status",
                "status": 429,
                "retry_after": f"decimal:{F4_SECONDS}",
                "method": "PATCH",
                "count": 1,
            },
        ),
        expect=_retry_waited(F4_SECONDS),
    ),
    Scenario(
        fid="F5",
        title="x-ms-throttle-limit-percentage 0.95 on successes",
        rules=({"kind": "throttle_warning", "percentage": 0.95, "rate": 1.0},),
        expect=_slowed,
    ),
    Scenario(
        fid="F6a",
        title="503 bursts with Retry-After on writes",
        rules=writes_rule(kind="status", status=503, retry_after="int:1", rate=0.3, seed=6),
    ),
    Scenario(
        fid="F6b",
        title="503 bursts without Retry-After on writes",
        rules=writes_rule(kind="status", status=503, rate=0.3, seed=7),
    ),
    Scenario(
        fid="F7",
        title="504 after the change on every PATCH (resets, disables)",
        rules=({"kind": "status", "status": 504, "when": "after", "method": "PATCH"},),
    ),
    Scenario(
        fid="F8a",
        title="connection refused for 1.5 s (Graph host down)",
        drive=refused(1.5),
        expect=all_verified,
    ),
    Scenario(
        fid="F8b",
        title="connection refused for 20 s (Graph host down)",
        drive=refused(20.0),
        expect=all_verified,
        slow=True,
    ),
    Scenario(
        fid="F9a",
        title="connection dropped after the change ($batch)",
        rules=({"kind": "drop_after", "path": "/$batch", "rate": 0.4, "seed": 9},),
    ),
    Scenario(
        fid="F9b",
        title="connection reset before the change ($batch)",
        rules=({"kind": "reset_before", "path": "/$batch", "rate": 0.4, "seed": 10},),
    ),
    Scenario(
        fid="F10",
        title="no answer: drip 1 byte / 20 s (60 s deadline)",
        rules=({"kind": "drip", "path": "/$batch", "delay_s": 20, "count": 1, "skip": 1},),
        slow=True,
    ),
    Scenario(
        fid="F11",
        title="drip 1 byte / 0.8 s (60 s deadline)",
        rules=({"kind": "drip", "path": "/$batch", "delay_s": 0.8, "count": 1, "skip": 2},),
        slow=True,
    ),
    Scenario(
        fid="F12",
        title="mixed items: 404, 429 (Retry-After 0.7), 500 after the change",
        rules=(
            {"kind": "status", "status": 404, "path": "/users/*/revokeSignInSessions", "count": 1},
            {
                "kind": "status",
                "status": 429,
                "retry_after": "decimal:0.7",
                "method": "POST",
                "rate": 0.3,
                "seed": 12,
            },
            {
                "kind": "status",
                "status": 500,
                "when": "after",
                "method": "DELETE",
                "rate": 0.4,
                "seed": 13,
            },
        ),
    ),
    Scenario(
        fid="F13a",
        title="$batch envelope 424",
        rules=({"kind": "batch_status", "status": 424, "count": 2},),
    ),
    Scenario(
        fid="F13b",
        title="$batch envelope 429 (Retry-After 0.5)",
        rules=({"kind": "batch_status", "status": 429, "retry_after": "0.5", "count": 2},),
    ),
    Scenario(
        fid="F13c",
        title="$batch envelope 503 with Retry-After",
        rules=({"kind": "batch_status", "status": 503, "retry_after": "int:1", "count": 2},),
    ),
    Scenario(
        fid="F13d",
        title="$batch envelope 500, no body, after the items ran",
        rules=(
            {"kind": "batch_status", "status": 500, "body": False, "when": "after", "count": 2},
        ),
    ),
    Scenario(
        fid="F14a",
        title="batch answer missing items",
        rules=({"kind": "batch_missing_items", "drop": 2, "rate": 0.5, "seed": 14},),
    ),
    Scenario(
        fid="F14b",
        title="batch answer with a duplicated id",
        rules=({"kind": "batch_duplicate_id", "rate": 0.5, "seed": 15},),
    ),
    Scenario(
        fid="F14c",
        title="batch answer with an unknown id",
        rules=({"kind": "batch_unknown_id", "rate": 0.5, "seed": 16},),
    ),
    Scenario(
        fid="F14d",
        title="batch answer not JSON",
        rules=({"kind": "batch_malformed", "rate": 0.4, "seed": 17},),
    ),
    Scenario(
        fid="F14e",
        title="batch answer truncated",
        rules=({"kind": "batch_truncated", "rate": 0.4, "seed": 18},),
    ),
    Scenario(
        fid="F15",
        title="access token expired mid-run (401)",
        # One expiry: a 401 to the fresh token as well stops the run (exit 5, resumable;
        # tests/engine/test_apply.py::test_token_refused_after_a_refresh_stops_the_run_resumably).
        rules=({"kind": "token_expired", "path": "/$batch", "count": 1, "skip": 2},),
    ),
    Scenario(
        fid="F16",
        title="claims challenge mid-run (401 + claims)",
        rules=({"kind": "claims_challenge", "path": "/$batch", "count": 1, "skip": 2},),
    ),
    Scenario(
        fid="F18",
        title="403 on one target's writes",
        rules=tuple(
            {"kind": "status", "status": 403, "method": m, "path": "^/users/" + "{ADELE}"}
            for m in WRITES
        ),
        expect=_one_attempt,
    ),
    Scenario(
        fid="F19",
        title="target deleted between plan and apply",
        drive=drift(delete_user),
        expect=_drifted(False),
    ),
    Scenario(
        fid="F20a",
        title="target's UPN changed between plan and apply",
        drive=drift(rename_user),
        expect=_drifted(False),
    ),
    Scenario(
        fid="F20b",
        title="target made privileged between plan and apply",
        drive=drift(make_privileged),
        expect=_drifted(False),
    ),
    Scenario(
        fid="F20c",
        title="target changed, --on-drift abort",
        drive=drift(make_privileged, "--on-drift", "abort"),
        first_codes=frozenset({3}),
        aborts=True,
        expect=_drifted(True),
    ),
    Scenario(
        fid="F21",
        title="default method deleted last (Graph's 400 otherwise)",
        expect=_default_last,
    ),
    Scenario(
        fid="F25",
        title="run folder's disk full mid-run (tmpfs)",
        drive=full_disk,
    ),
    Scenario(
        fid="F26-F27",
        title="second writer; dead holder; wrong --force-unlock id",
        drive=second_writer,
        emulator={"latency_ms": "60:120"},
    ),
    Scenario(
        fid="F28",
        title="runner's clock 10 min ahead, 504 after every PATCH",
        drive=skewed,
        runner_skew_s=600.0,
        expect=all_verified,
    ),
    Scenario(
        fid="F29",
        title="sustained 503s without Retry-After (outage)",
        drive=outage,
    ),
    Scenario(
        fid="F30",
        title="canary fails (403): halt before the rest",
        rules=tuple(
            {"kind": "status", "status": 403, "method": m, "path": "^/users/" + "{ADELE}"}
            for m in WRITES
        ),
        plan_extra={"canary": 1, "halt_on_failure_rate": 0.05},
        first_codes=frozenset({4}),
        expect=_canary_halt,
    ),
    Scenario(
        fid="F31a",
        title="SIGTERM mid-run, then resume",
        drive=interrupt(signal.SIGTERM),
        emulator={"latency_ms": "60:120"},
    ),
    Scenario(
        fid="F31b",
        title="SIGINT mid-run, then resume",
        drive=interrupt(signal.SIGINT),
        emulator={"latency_ms": "60:120"},
    ),
    Scenario(
        fid="F32",
        title="TLS interception (certificate from an untrusted CA)",
        drive=bad_ca,
    ),
    Scenario(
        fid="F33",
        title="slow Graph (latency 100-600 ms per request)",
        emulator={"latency_ms": "100:600"},
        expect=all_verified,
    ),
)

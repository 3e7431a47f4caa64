"""What the reliability campaigns share: a tenant per worker, the CLI as a subprocess, and the
invariants every run must keep after crashes and faults.

A campaign tenant is an `Emulator` in the test process (the emulated tenant survives: only
the runner dies); the runner is `python -m runner` in a child process. Between trials the
tenant is reset to its seed (`POST /_emulator/reset`: the same users and ids, the ledger and
the request log emptied), so one frozen plan serves every trial.

The invariants (`check_run`), after the last `--resume`:

- nothing lost: every item of the plan is terminal (verified, succeeded, failed, noop,
  drifted, refused, manual, skipped, confirmed), none left planned, intent or unknown;
- nothing repeated: at most one `password_reset` per user in the emulator's ledger, and
  `tap_created` at most 1 + the re-issues the journal shows for that user's pass item. A
  re-issue is legal only for a pass Graph created and we never received: the journal's
  intent carries `reissue: true`, the step was `unknown` before it, and secrets.csv holds no
  complete pass row for the item written before that intent (a pass in hand is never
  replaced);
- no send without a committed intent: every write the emulator logged inside a `$batch`
  carries a `client-request-id` that is the id of an intent in the journal;
- every recorded move is a legal successor (`runstate.ITEM_TRANSITIONS` and
  `STEP_TRANSITIONS`), starting from the item's first status and from `planned` for steps;
- `PRAGMA integrity_check` says ok; no `*.tmp` file is left in the run folder;
- secrets.csv: every row is complete (its check cell matches) except rows cut by a
  `mid_secrets_write` kill (at most one per such kill, never taken for a secret), and every
  user whose password the ledger shows reset has a complete password row, the one its
  reset intent names;
- the report agrees with the journal (one row per item, same statuses), and what the report
  calls done is in the ledger (a verified reset has its `password_reset`, a failed reset has
  none).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runner.emulator import Emulator, EmulatorConfig
from runner.engine.apply import step_for_key
from runner.errors import StorageError
from runner.journal import Journal
from runner.runstate import ITEM_TRANSITIONS, STEP_TRANSITIONS, ItemStatus, StepStatus
from runner.secretfile import COLUMNS as SECRET_COLUMNS
from runner.secretfile import SecretsFile

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("ENTRA_BULK_FULL") == "1"

TERMINAL = frozenset(
    {
        ItemStatus.VERIFIED,
        ItemStatus.SUCCEEDED,
        ItemStatus.FAILED,
        ItemStatus.NOOP,
        ItemStatus.DRIFTED,
        ItemStatus.REFUSED,
        ItemStatus.MANUAL,
        ItemStatus.SKIPPED,
        ItemStatus.CONFIRMED,
    }
)
# The five actions of the campaigns, in Microsoft's order (reset or disable, then revoke,
# then remove methods); the pass comes last, for the user's new registration.
ACTIONS = (
    "reset_password",
    "disable_account",
    "revoke_sessions",
    "require_mfa_reregistration",
    "create_temporary_access_pass",
)
# Cloud-only members of the seeded tenant with a mix of methods (none, phones, Authenticator,
# software OATH, email), none privileged.
USERS = (
    "adele.vance@contoso.com",
    "alex.wilber@contoso.com",
    "megan.bowen@contoso.com",
    "diego.siciliani@contoso.com",
    "isaiah.langer@contoso.com",
)
EFFECT_OF = {
    "reset_password": "password_reset",
    "create_temporary_access_pass": "tap_created",
    "revoke_sessions": "sessions_revoked",
    "disable_account": "account_disabled",
}


def plan_text(name: str, users: Sequence[str] = USERS, *, canary: int = 1, **extra: Any) -> str:
    """A YAML plan of the five actions over `users`."""
    safety = {"required_approvals": 0, "canary": canary, **extra}
    lines = [
        "version: 1",
        f"name: {name}",
        f"actions: [{', '.join(ACTIONS)}]",
        "targets:",
        *(f"  - user: {upn}" for upn in users),
        "safety: {" + ", ".join(f"{k}: {v}" for k, v in safety.items()) + "}",
    ]
    return "\n".join(lines) + "\n"


# --- the tenant --------------------------------------------------------------------------


@dataclass
class Ran:
    """What one CLI process did."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float
    killed: bool = False


class TokenRecorder:
    """Keeps every access token the emulated tenant signs (secret canaries look for them)."""

    def __init__(self, emulator: Emulator) -> None:
        assert emulator.app is not None
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        signer = emulator.app.signer
        original = signer.sign

        def sign(claims: dict[str, Any]) -> str:
            token = original(claims)
            with self._lock:
                self.tokens.append(token)
            return token

        signer.sign = sign  # type: ignore[method-assign]

    def values(self) -> list[str]:
        with self._lock:
            return list(self.tokens)


@dataclass
class CampaignTenant:
    """An emulated tenant (in this process) and a folder where CLI processes work."""

    emulator: Emulator
    folder: Path
    admin: httpx.Client
    tokens: TokenRecorder
    outputs: list[Ran] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        template: Path | None = None,
        users: int = 60,
        seed: int = 1,
        **options: Any,
    ) -> CampaignTenant:
        """A tenant in `folder/tenant` (copied from `template` when given: no key generation)."""
        import shutil

        folder.mkdir(parents=True, exist_ok=True)
        state = folder / "tenant"
        if template is not None and not state.exists():
            shutil.copytree(template, state)
        options.setdefault("consistency_delay_s", 0.0)
        emulator = Emulator(EmulatorConfig(state_dir=state, users=users, seed=seed, **options))
        emulator.start()
        return cls(
            emulator=emulator,
            folder=folder,
            admin=httpx.Client(base_url=emulator.admin_url, timeout=30),
            tokens=TokenRecorder(emulator),
        )

    def stop(self) -> None:
        self.admin.close()
        self.emulator.stop()

    @property
    def client_secret(self) -> str:
        return str(self.emulator.info["apps"][0]["client_secret"])

    @property
    def app_id(self) -> str:
        return str(self.emulator.info["apps"][0]["client_id"])

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a CLI process pointed at this tenant."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ENTRA_BULK_", "AZURE_")) and k != "PYTHONPATH"
        }
        env.update(
            ENTRA_BULK_EMULATOR=str(self.emulator.connection_file),
            XDG_STATE_HOME=str(self.folder / "state"),
            XDG_CONFIG_HOME=str(self.folder / "config"),
            XDG_DATA_HOME=str(self.folder / "data"),
            PYTHONPATH=str(ROOT),
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def cli(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        kill_after_s: float | None = None,
        kill_when: Callable[[], bool] | None = None,
        signal_after_s: tuple[float, int] | None = None,
        timeout_s: float = 240.0,
    ) -> Ran:
        """Run `python -m runner --tenant emulator ARGS` in `folder`; SIGKILL it
        `kill_after_s` after it starts (or after `kill_when()` becomes true), or send it
        another signal after a delay, if asked."""
        argv = (sys.executable, "-m", "runner", "--tenant", "emulator", *args)
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=self.folder,
            env=dict(env) if env is not None else self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = False
        delay = kill_after_s
        if kill_when is not None:
            while process.poll() is None and not kill_when():
                if time.monotonic() - started > 30:
                    break
                time.sleep(0.002)
        if signal_after_s is not None:
            delay = signal_after_s[0]
        if delay is not None:
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                sig = signal.SIGKILL if signal_after_s is None else signal_after_s[1]
                process.send_signal(sig)
                killed = sig == signal.SIGKILL
        try:
            out, err = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            err += f"\n[campaign] killed after the {timeout_s:g} s timeout\n"
        ran = Ran(
            args=tuple(args),
            code=process.returncode,
            out=out,
            err=err,
            seconds=time.monotonic() - started,
            killed=killed or process.returncode == -signal.SIGKILL,
        )
        self.outputs.append(ran)
        return ran

    def plan(self, text: str, name: str) -> Path:
        """Write a YAML plan and freeze it against this tenant (a CLI process)."""
        source = self.folder / f"{name}.yaml"
        source.write_text(text)
        target = self.folder / f"{name}.plan.json"
        ran = self.cli("plan", str(source), "-o", str(target))
        assert ran.code == 0, ran.err
        return target

    def reset(self) -> None:
        """The seeded tenant again: same users and ids; ledger, request log and faults emptied."""
        assert self.admin.post("/reset").status_code == 204
        self.admin.delete("/faults")

    def fault(self, **rule: Any) -> None:
        response = self.admin.post("/faults", json=rule)
        assert response.status_code == 201, response.text

    def faults_injected(self) -> int:
        rules = self.admin.get("/faults").json()["rules"]
        return sum(int(rule["injected"]) for rule in rules)

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.admin.get("/ledger").json()["value"])

    def write_items(self) -> list[dict[str, Any]]:
        """The runner's writes that reached the tenant inside `$batch` (with their ids)."""
        assert self.emulator.store is not None
        rows = self.emulator.store.query(
            "SELECT seq, time, method, path, status, batch, client_request_id FROM requests "
            "WHERE write = 1 AND batch IS NOT NULL AND app = ? ORDER BY seq",
            (self.app_id,),
        )
        return [dict(row) for row in rows]

    def requests(self) -> list[dict[str, Any]]:
        """Every request the runner's app made (envelopes, items, standalone calls)."""
        assert self.emulator.store is not None
        rows = self.emulator.store.query(
            "SELECT seq, time, method, path, status, batch, write FROM requests WHERE app = ? "
            "ORDER BY seq",
            (self.app_id,),
        )
        return [dict(row) for row in rows]

    def user_id(self, upn: str) -> str:
        assert self.emulator.store is not None
        user = self.emulator.store.user(upn)
        assert user is not None, upn
        return str(user["id"])

    def user_row(self, user_id: str) -> dict[str, Any] | None:
        assert self.emulator.store is not None
        row = self.emulator.store.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else dict(row)


def only_run_dir(runs: Path) -> Path | None:
    """The one run folder under `runs`, or None when apply never made one."""
    if not runs.is_dir():
        return None
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) <= 1, found
    return found[0] if found else None


# --- invariants --------------------------------------------------------------------------


@dataclass
class Findings:
    """What the checks of one run found (all zeros and empty lists when it kept its promises)."""

    items: int = 0
    lost: int = 0
    duplicated: int = 0
    unknown_seen: int = 0  # items that were unknown at some point (before reconciliation)
    unknown_left: int = 0  # items still unknown at the end (after reconciliation)
    reissued: int = 0
    illegal_moves: int = 0
    sends_without_intent: int = 0
    integrity_ok: bool = True
    temp_files: list[str] = field(default_factory=list)
    torn_rows: int = 0
    passwords_missing: int = 0
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (kind, value), complete rows
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.problems.append(text)


def secret_rows(run_dir: Path) -> tuple[list[dict[str, str]], int]:
    """Complete rows of secrets.csv (as dicts) and the number of rows that are not."""
    path = run_dir / "secrets.csv"
    if not path.exists():
        return [], 0
    complete = {r.secret_ref for r in SecretsFile(run_dir).records()}
    text = path.read_bytes().decode("utf-8", "replace")
    rows: list[dict[str, str]] = []
    torn = 0
    for line in [line for line in text.split("\n") if line][1:]:
        cells = next(csv.reader([line]), [])
        record = dict(zip(SECRET_COLUMNS, cells, strict=False))
        ref = record.get("secret_ref", "").removeprefix("'")
        if len(cells) == len(SECRET_COLUMNS) and ref in complete:
            rows.append(record)
        else:
            torn += 1
    return rows, torn


def _check_moves(journal: Journal, findings: Findings) -> dict[int, list[dict[str, Any]]]:
    """Every recorded move is a legal successor; returns each item's intents (in order)."""
    items = {item.id: item for item in journal.items()}
    item_state = {item_id: str(item.initial_status) for item_id, item in items.items()}
    step_state: dict[tuple[int, str], str] = {}
    intents: dict[int, list[dict[str, Any]]] = {}
    for move in journal.transitions():
        if move.step_key is None:
            before = item_state.get(move.item_id)
            legal = ITEM_TRANSITIONS[ItemStatus(move.old)]
            if move.old != before or ItemStatus(move.new) not in legal:
                findings.illegal_moves += 1
                findings.fail(f"item {move.item_id}: move {move.old} → {move.new} after {before}")
            item_state[move.item_id] = move.new
            continue
        key = (move.item_id, move.step_key)
        before = step_state.get(key, str(StepStatus.PLANNED))
        if move.old != before or StepStatus(move.new) not in STEP_TRANSITIONS[StepStatus(move.old)]:
            findings.illegal_moves += 1
            findings.fail(f"item {move.item_id} step {move.step_key}: {move.old} → {move.new}")
        step_state[key] = move.new
        if move.new == StepStatus.INTENT:
            intents.setdefault(move.item_id, []).append(
                {"step": move.step_key, "old": move.old, "time": move.time, **move.detail}
            )
    for item_id, item in items.items():
        if item_state[item_id] != str(item.status):
            findings.illegal_moves += 1
            findings.fail(f"item {item_id}: moves end at {item_state[item_id]}, not {item.status}")
    return intents


def check_run(
    tenant: CampaignTenant,
    run_dir: Path,
    *,
    torn_allowed: int = 0,
    final: bool = True,
    runner_skew_s: float = 0.0,
) -> Findings:
    """Check the invariants of the module docstring on a run folder (after its last process
    ended). `final=False` checks only what must hold at any moment (after a crash too)."""
    findings = Findings()
    journal = Journal.open(run_dir)
    try:
        items = journal.items()
        findings.items = len(items)
        findings.statuses = Counter(str(item.status) for item in items)
        integrity = journal.integrity_check()
        findings.integrity_ok = integrity == ("ok",)
        if not findings.integrity_ok:
            findings.fail(f"integrity_check: {integrity}")
        intents = _check_moves(journal, findings)
        moves = journal.transitions()
        options = dict(journal.header(content=True).content["plan"]["options"])
    finally:
        journal.close()
    by_id = {item.id: item for item in items}
    findings.unknown_seen = len({m.item_id for m in moves if m.new == ItemStatus.UNKNOWN})
    findings.unknown_left = sum(1 for item in items if item.status is ItemStatus.UNKNOWN)
    if final:
        open_items = [item for item in items if item.status not in TERMINAL]
        findings.lost = len(open_items)
        for item in open_items[:5]:
            findings.fail(f"item {item.id} {item.upn} {item.action} left {item.status}")

    # No send without a committed intent (matched by request and time: the emulator logs a
    # batch item under its envelope's client-request-id, so ids cannot be compared).
    for problem in _sends_without_intent(tenant, items, intents, options, runner_skew_s):
        findings.sends_without_intent += 1
        findings.fail(problem)

    # secrets.csv
    rows, torn = secret_rows(run_dir)
    findings.torn_rows = torn
    if torn > torn_allowed:
        findings.fail(f"secrets.csv has {torn} cut rows ({torn_allowed} allowed by the kills)")
    findings.secrets = [(r["kind"], r["value"]) for r in rows]
    refs = {r["secret_ref"].removeprefix("'"): r for r in rows}

    # The ledger: nothing non-repeatable twice; every password set is in hand.
    ledger = tenant.ledger()
    effects = Counter((row["user_id"], row["effect"]) for row in ledger)
    items_of = {(item.object_id, item.action): item for item in items}
    for (user, effect), count in sorted(effects.items()):
        if effect == "password_reset" and count > 1:
            findings.duplicated += count - 1
            findings.fail(f"{user}: {count} password resets")
        if effect == "tap_created":
            item = items_of.get((user, "create_temporary_access_pass"))
            found = intents.get(item.id, []) if item else []
            legal = _legal_reissues(item.id, found, rows, findings) if item else 0
            findings.reissued += legal
            if count > 1 + legal:
                findings.duplicated += count - 1 - legal
                findings.fail(f"{user}: {count} passes created, {legal} legal re-issues")
    for (user, effect), _ in effects.items():
        if effect != "password_reset":
            continue
        item = items_of.get((user, "reset_password"))
        ref = item.secret_ref if item else None
        if item is None or ref is None or ref not in refs:
            findings.passwords_missing += 1
            findings.fail(f"{user}: password reset in the tenant, no complete row ({ref})")
        elif refs[ref]["object_id"].removeprefix("'") != user:
            findings.passwords_missing += 1
            findings.fail(f"{user}: the reset's secret_ref {ref} names another user's row")

    # Leftovers and the report.
    findings.temp_files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp"))
    if final:
        for name in findings.temp_files:
            findings.fail(f"temporary file left: {name}")
        _check_report(run_dir, by_id, findings)
        _check_truth(tenant, items, effects, findings)
    return findings


def _sends_without_intent(
    tenant: CampaignTenant,
    items: Sequence[Any],
    intents: Mapping[int, list[dict[str, Any]]],
    options: Mapping[str, Any],
    runner_skew_s: float = 0.0,
) -> list[str]:
    """Each write the tenant received must follow its own committed intent: the k-th write
    of a request (method and path) comes after at least k intents of that request. (The
    journal's times are the runner's clock: `runner_skew_s` ahead of the tenant's.)"""
    by_id = {item.id: item for item in items}
    planned: dict[tuple[str, str], list[str]] = {}
    for item_id, found in intents.items():
        item = by_id[item_id]
        for intent in found:
            step = step_for_key(
                item.action, intent["step"], item.object_id, options, delegated=False
            )
            if step is None:
                continue
            moment = (intent["time"] - dt.timedelta(seconds=runner_skew_s)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            planned.setdefault((step.method, step.path), []).append(moment)
    sent: dict[tuple[str, str], list[str]] = {}
    for row in tenant.write_items():
        sent.setdefault((row["method"], row["path"]), []).append(row["time"])
    problems = []
    for key, times in sorted(sent.items()):
        before = sorted(planned.get(key, []))
        for k, moment in enumerate(sorted(times)):
            if sum(1 for t in before if t < moment) < k + 1:
                problems.append(f"write {k + 1} of {key[0]} {key[1]} has no intent before it")
    return problems


def _legal_reissues(
    item_id: int, intents: list[dict[str, Any]], rows: list[dict[str, str]], findings: Findings
) -> int:
    """Re-issues of a pass that may have added one: each from `unknown` (a pass Graph may
    have made but we never received). A re-send after an answer proving the request was not
    executed (429, 503 with Retry-After: `intent → intent`) adds none. And no pass in hand was
    ever replaced: at most one complete pass row per item."""
    in_hand = [
        r
        for r in rows
        if r["item"].removeprefix("'") == str(item_id) and r["kind"] == "temporary_access_pass"
    ]
    if len(in_hand) > 1:
        findings.fail(f"item {item_id}: {len(in_hand)} passes received: one replaced another")
    legal = 0
    for intent in intents:
        if not intent.get("reissue"):
            continue
        if intent["old"] == StepStatus.UNKNOWN:
            legal += 1
        elif intent["old"] != StepStatus.INTENT:
            findings.fail(f"item {item_id}: re-issue from {intent['old']}")
    return legal


def _check_report(run_dir: Path, items: Mapping[int, Any], findings: Findings) -> None:
    path = run_dir / "report.csv"
    if not path.exists():
        findings.fail("no report.csv")
        return
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    reported = {int(row["item"]): row["status"] for row in rows}
    if set(reported) != set(items):
        findings.fail(f"report has {len(reported)} items, journal {len(items)}")
    for item_id, item in items.items():
        status = reported.get(item_id)
        journal_status = str(item.status)
        if status is not None and status != journal_status and status != "skipped":
            findings.fail(f"report says item {item_id} is {status}, journal {journal_status}")


def _check_truth(
    tenant: CampaignTenant,
    items: Sequence[Any],
    effects: Counter[tuple[str, str]],
    findings: Findings,
) -> None:
    """What the journal calls done happened in the tenant; a failed reset did not."""
    for item in items:
        effect = EFFECT_OF.get(item.action)
        done = item.status in {ItemStatus.VERIFIED, ItemStatus.SUCCEEDED}
        if effect is None:
            continue
        count = effects[(item.object_id, effect)]
        if item.action == "disable_account":
            user = tenant.user_row(item.object_id)
            if done and (user is None or user["account_enabled"]):
                findings.fail(f"item {item.id}: {item.status} but the account is enabled")
            continue
        if done and count == 0:
            findings.fail(f"item {item.id} {item.action}: {item.status} without {effect}")
        if item.action == "reset_password" and item.status is ItemStatus.FAILED and count:
            findings.fail(f"item {item.id}: reset failed, yet the tenant shows it done")


# --- secret canaries -----------------------------------------------------------------------


@dataclass
class CanaryScan:
    """Known secrets searched for in every file and output a campaign produced."""

    secrets: dict[str, str] = field(default_factory=dict)  # value → kind
    places: int = 0
    bytes_scanned: int = 0
    tracebacks: int = 0
    found: list[tuple[str, str]] = field(default_factory=list)  # (place, kind)

    def add(self, kind: str, value: str) -> None:
        if value and len(value) >= 8:
            self.secrets.setdefault(value, kind)

    def add_tokens(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self.add("access token", token)
            self.add("access token signature", token.rsplit(".", 1)[-1])

    def add_run(self, run_dir: Path) -> None:
        for row in secret_rows(run_dir)[0]:
            self.add(row["kind"], row["value"])

    def scan_text(self, place: str, text: str) -> None:
        self.scan_bytes(place, text.encode("utf-8", "replace"))

    def scan_bytes(self, place: str, data: bytes) -> None:
        self.places += 1
        self.bytes_scanned += len(data)
        for value, kind in self.secrets.items():  # exact bytes of each known secret
            if value.encode() in data:
                self.found.append((place, kind))

    def scan_tree(self, folder: Path, *, skip: Callable[[Path], bool] = lambda _p: False) -> None:
        """Every file under `folder` but secrets.csv (the one place secrets belong)."""
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name == "secrets.csv" or skip(path):
                continue
            if path.name.endswith("emulator.json"):
                continue  # the emulator's connection file: it holds the app's credentials
            if path.name.startswith("crash-") and path.suffix == ".log":
                self.tracebacks += 1
            self.scan_bytes(str(path), path.read_bytes())

    def scan_outputs(self, outputs: Iterable[Ran]) -> None:
        for index, ran in enumerate(outputs):
            self.scan_text(f"stdout of process {index} ({' '.join(ran.args[:2])})", ran.out)
            self.scan_text(f"stderr of process {index} ({' '.join(ran.args[:2])})", ran.err)


def canaries_of(tenant: CampaignTenant) -> CanaryScan:
    """A scan armed with the tenant's client secret and every token it signed so far."""
    scan = CanaryScan()
    scan.add("client secret", tenant.client_secret)
    scan.add_tokens(tenant.tokens.values())
    return scan


def scan_campaign(tenant: CampaignTenant, run_dirs: Iterable[Path]) -> CanaryScan:
    """Search every run folder, the tenant folder's own files (state folder with crash
    logs, plans) and every CLI output of `tenant` for its known secrets."""
    scan = canaries_of(tenant)
    dirs = list(run_dirs)
    for run_dir in dirs:
        scan.add_run(run_dir)
    emulator_state = tenant.emulator.state_dir

    def skip(path: Path) -> bool:
        return emulator_state in path.parents

    scan.scan_tree(tenant.folder, skip=skip)
    scan.scan_outputs(tenant.outputs)
    return scan


# --- reporting figures ----------------------------------------------------------------------


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain text table (the campaigns print their figures with it)."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


# --- the crash campaign -----------------------------------------------------------------------

CRASH_POINTS = (
    "before_intent_commit",
    "after_intent_commit",
    "after_send_before_outcome",
    "after_outcome_commit",
    "mid_secrets_write",
    "mid_report_write",
)
# How many times a clean run of the crash plan reaches each point, at least (a later arrival
# is drawn from 1..this; an N the run never reaches leaves the run uncrashed, and says so).
ARRIVALS = {
    "before_intent_commit": 6,
    "after_intent_commit": 6,
    "after_send_before_outcome": 6,
    "after_outcome_commit": 6,
    "mid_secrets_write": 10,
    "mid_report_write": 3,
}
MAX_RESUMES = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Trial:
    """One crash trial: a named point and arrival, or a SIGKILL after a delay; then maybe
    more SIGKILLs during the resumes."""

    index: int
    point: str | None = None
    count: int = 1
    kill_after_s: float | None = None
    resume_kills: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        if self.point is not None:
            return f"{self.point}:{self.count}"
        return f"SIGKILL {self.kill_after_s:.3f} s into the run"


@dataclass
class TrialResult:
    """What one trial did and what the checks found."""

    trial: Trial
    kills: int = 0
    resumes: int = 0
    crashed_at_point: bool = False
    no_run_folder: bool = False
    codes: list[int] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    crash_state: list[str] = field(default_factory=list)  # problems with the state at the kill
    seconds: float = 0.0
    run_dir: Path | None = None


def named_trials(start: int, per_point: int, rng: Any) -> list[Trial]:
    """`per_point` trials at each named point: the first arrival, then drawn later ones."""
    trials: list[Trial] = []
    for point in CRASH_POINTS:
        for k in range(per_point):
            count = 1 if k == 0 else rng.randint(2, ARRIVALS[point])
            trials.append(Trial(index=start + len(trials), point=point, count=count))
    return trials


def random_trials(start: int, number: int, rng: Any, span_s: float) -> list[Trial]:
    """SIGKILLs at seeded random times over a clean run's span; a third of them are killed
    again during their first resume."""
    trials = []
    for k in range(number):
        again = (rng.uniform(0.0, span_s),) if rng.random() < 1 / 3 else ()
        trials.append(
            Trial(index=start + k, kill_after_s=rng.uniform(0.0, span_s), resume_kills=again)
        )
    return trials


def _orphans(run_dir: Path) -> list[tuple[Any, tuple[str, str] | None]]:
    """Steps left in intent, each with the (method, path) of its request."""
    journal = Journal.open(run_dir)
    try:
        options = dict(journal.header(content=True).content["plan"]["options"])
        found = journal.orphaned_intents()
    finally:
        journal.close()
    out: list[tuple[Any, tuple[str, str] | None]] = []
    for orphan in found:
        step = step_for_key(
            orphan.action, orphan.step_key, orphan.object_id, options, delegated=False
        )
        out.append((orphan, (step.method, step.path) if step else None))
    return out


def crash_state(point: str, tenant: CampaignTenant, run_dir: Path) -> list[str]:
    """The exact state the first arrival at `point` must leave (reliability.md F24)."""
    problems: list[str] = []
    orphans = _orphans(run_dir)
    writes = tenant.write_items()
    sent = {(row["method"], row["path"]) for row in writes}
    rows, torn = secret_rows(run_dir)
    ledger = tenant.ledger()
    if point == "before_intent_commit":
        journal = Journal.open(run_dir)
        try:
            steps = journal.steps()
        finally:
            journal.close()
        if steps or writes or ledger:
            problems.append(f"{point}: {len(steps)} steps journaled, {len(writes)} writes sent")
    elif point == "after_intent_commit":
        if not orphans or writes or ledger:
            problems.append(f"{point}: {len(orphans)} intents, {len(writes)} writes sent")
    elif point == "after_send_before_outcome":
        if not orphans or any(request not in sent for _, request in orphans):
            problems.append(f"{point}: {len(orphans)} intents, not all of them sent")
    elif point == "after_outcome_commit":
        if orphans:
            problems.append(f"{point}: {len(orphans)} intents without an outcome")
    elif point == "mid_secrets_write":
        if torn != 1 or rows or orphans or writes:
            problems.append(
                f"{point}: {torn} cut rows, {len(rows)} complete, {len(writes)} writes sent"
            )
    elif point == "mid_report_write":
        journal = Journal.open(run_dir)
        try:
            open_items = [i for i in journal.items() if i.status not in TERMINAL]
        finally:
            journal.close()
        temporary = list(run_dir.glob(".*.tmp"))
        if open_items or not temporary:
            problems.append(f"{point}: {len(open_items)} items open, temporary files {temporary}")
    return problems


def _journal_complete(run_dir: Path) -> bool:
    try:
        Journal.open(run_dir).close()
    except StorageError:
        return False
    return True


def _journal_made(runs: Path) -> Callable[[], bool]:
    """True once apply has created its run folder's journal (random kills count from then)."""
    return lambda: any(runs.glob("*/journal.sqlite"))


def _journal_written(run_dir: Path) -> Callable[[], bool]:
    """True once a resumed process has written to the journal (taken the lock)."""
    wal = run_dir / "journal.sqlite-wal"
    since = time.time_ns()
    return lambda: wal.exists() and wal.stat().st_mtime_ns >= since


def run_trial(tenant: CampaignTenant, plan: Path, trial: Trial, root: Path) -> TrialResult:
    """Apply with a crash, resume (with more kills if asked) until the run ends, check."""
    started = time.monotonic()
    result = TrialResult(trial=trial)
    tenant.reset()
    runs = root / f"trial-{trial.index:04d}"
    env = tenant.env()
    if trial.point is not None:
        env["ENTRA_BULK_CRASH_AT"] = f"{trial.point}:{trial.count}"
    first = tenant.cli(
        "apply",
        str(plan),
        "--yes",
        "--run-dir",
        str(runs),
        env=env,
        kill_after_s=trial.kill_after_s,
        kill_when=_journal_made(runs) if trial.kill_after_s is not None else None,
    )
    result.codes.append(first.code)
    result.kills += int(first.killed)
    result.crashed_at_point = trial.point is not None and first.killed
    run_dir = only_run_dir(runs)
    if run_dir is not None and first.killed and not _journal_complete(run_dir):
        # Killed while the journal was being created: `--resume` says the run never began
        # (tested below); nothing may have been sent. The operator applies again.
        resumed = tenant.cli("apply", "--resume", str(run_dir))
        if resumed.code != 6 or "creation never finished" not in resumed.err:
            result.crash_state.append(f"resume of an unfinished journal: {resumed.err[-200:]}")
        run_dir.rename(root / f"unfinished-{trial.index:04d}")
        run_dir = None
    if run_dir is None:
        # Killed before the run existed: nothing may have been sent; apply again.
        result.no_run_folder = True
        if tenant.ledger() or tenant.write_items():
            result.crash_state.append("writes sent before the run folder existed")
        again = tenant.cli("apply", str(plan), "--yes", "--run-dir", str(runs))
        result.codes.append(again.code)
        first = again
        run_dir = only_run_dir(runs)
        assert run_dir is not None, again.err
    result.run_dir = run_dir
    if result.crashed_at_point and trial.count == 1 and trial.point is not None:
        result.crash_state += crash_state(trial.point, tenant, run_dir)
    if first.killed:
        interim = check_run(tenant, run_dir, torn_allowed=result.kills, final=False)
        result.crash_state += interim.problems
    pending = list(trial.resume_kills)
    code = first.code if not first.killed else -9
    while code not in (0, 1) and result.resumes < MAX_RESUMES:
        delay = pending.pop(0) if pending else None
        ran = tenant.cli(
            "apply",
            "--resume",
            str(run_dir),
            kill_after_s=delay,
            kill_when=_journal_written(run_dir) if delay is not None else None,
        )
        result.resumes += 1
        result.codes.append(ran.code)
        result.kills += int(ran.killed)
        code = -9 if ran.killed else ran.code
    result.findings = check_run(tenant, run_dir, torn_allowed=result.kills)
    if code not in (0, 1):
        result.findings.fail(f"the run did not end: exit codes {result.codes}")
    result.seconds = time.monotonic() - started
    return result


def calibrate(tenant: CampaignTenant, plan: Path, root: Path) -> float:
    """Seconds a clean apply of `plan` runs once its journal exists (random kills land in
    that span)."""
    tenant.reset()
    runs = root / "calibration"
    made = _journal_made(runs)
    seen: list[float] = []

    def arrived() -> bool:
        if made():
            seen.append(time.monotonic())
            return True
        return False

    ran = tenant.cli("apply", str(plan), "--yes", "--run-dir", str(runs), kill_when=arrived)
    assert ran.code == 0, ran.err
    return time.monotonic() - seen[0] if seen else ran.seconds


@dataclass
class CrashCampaign:
    """Every trial's result, and the figures."""

    results: list[TrialResult]
    span_s: float
    seconds: float
    canaries: CanaryScan | None = None

    def figures(self) -> dict[str, Any]:
        found = [r.findings for r in self.results]
        return {
            "trials": len(self.results),
            "named-point trials": sum(1 for r in self.results if r.trial.point),
            "of which killed at their point": sum(1 for r in self.results if r.crashed_at_point),
            "random-time trials": sum(1 for r in self.results if r.trial.point is None),
            "SIGKILLs": sum(r.kills for r in self.results),
            "killed before the run began (folder or journal unfinished)": sum(
                r.no_run_folder for r in self.results
            ),
            "resumes": sum(r.resumes for r in self.results),
            "items checked": sum(f.items for f in found),
            "lost": sum(f.lost for f in found),
            "duplicated non-repeatable effects": sum(f.duplicated for f in found),
            "items unknown before reconciliation": sum(f.unknown_seen for f in found),
            "items unknown after": sum(f.unknown_left for f in found),
            "legal pass re-issues": sum(f.reissued for f in found),
            "illegal moves": sum(f.illegal_moves for f in found),
            "sends without a committed intent": sum(f.sends_without_intent for f in found),
            "integrity_check ok": f"{sum(f.integrity_ok for f in found)}/{len(found)}",
            "temporary files left": sum(len(f.temp_files) for f in found),
            "cut secrets rows (all from kills)": sum(f.torn_rows for f in found),
            "passwords set but not in secrets.csv": sum(f.passwords_missing for f in found),
            "wrong state at the kill (F24)": sum(len(r.crash_state) for r in self.results),
            "trials with a problem": sum(1 for r in self.results if r.findings.problems),
            "secret canaries found": len(self.canaries.found) if self.canaries else "not scanned",
            "clean apply (s)": round(self.span_s, 2),
            "campaign time (s)": round(self.seconds, 1),
        }

    def problems(self) -> list[str]:
        out = []
        for r in self.results:
            for text in [*r.crash_state, *r.findings.problems][:3]:
                out.append(f"trial {r.trial.index} ({r.trial.label}): {text}")
        return out

    def per_point(self) -> list[dict[str, Any]]:
        rows = []
        for point in (*CRASH_POINTS, None):
            mine = [r for r in self.results if r.trial.point == point]
            if not mine:
                continue
            rows.append(
                {
                    "kill": point or "random SIGKILL",
                    "trials": len(mine),
                    "killed": sum(r.kills > 0 for r in mine),
                    "lost": sum(r.findings.lost for r in mine),
                    "dup": sum(r.findings.duplicated for r in mine),
                    "unknown→left": f"{sum(r.findings.unknown_seen for r in mine)}→"
                    f"{sum(r.findings.unknown_left for r in mine)}",
                    "failed items": sum(r.findings.statuses["failed"] for r in mine),
                    "problems": sum(len(r.crash_state) + len(r.findings.problems) for r in mine),
                }
            )
        return rows


def crash_campaign(
    root: Path,
    template: Path,
    *,
    per_point: int,
    random_kills: int,
    workers: int = 2,
    seed: int = 7,
    scan: bool = True,
) -> CrashCampaign:
    """Run the crash campaign: each worker has its own tenant and runs its share of trials."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    rng = random.Random(seed)
    tenants = [
        CampaignTenant.start(root / f"worker-{w}", template=template, throttle=False)
        for w in range(workers)
    ]
    try:
        plans = [t.plan(plan_text("crash"), "crash") for t in tenants]
        span = calibrate(tenants[0], plans[0], root / "worker-0")
        trials = named_trials(0, per_point, rng)
        trials += random_trials(len(trials), random_kills, rng, span)

        def work(w: int) -> list[TrialResult]:
            return [
                run_trial(tenants[w], plans[w], trial, root / f"worker-{w}")
                for trial in trials[w::workers]
            ]

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [r for share in pool.map(work, range(workers)) for r in share]
        results.sort(key=lambda r: r.trial.index)
        campaign = CrashCampaign(results=results, span_s=span, seconds=0.0)
        if scan:
            scans = [
                scan_campaign(
                    t,
                    [
                        r.run_dir
                        for r in results
                        if r.run_dir is not None and t.folder in r.run_dir.parents
                    ],
                )
                for t in tenants
            ]
            merged = CanaryScan()
            for one in scans:
                merged.secrets.update(one.secrets)
                merged.places += one.places
                merged.bytes_scanned += one.bytes_scanned
                merged.tracebacks += one.tracebacks
                merged.found += one.found
            campaign.canaries = merged
        campaign.seconds = time.monotonic() - started
        return campaign
    finally:
        for tenant in tenants:
            tenant.stop()


# --- a loopback proxy in front of the Graph host (for faults the emulator cannot make) -------


class GraphProxy:
    """A TCP proxy on loopback in front of the emulator's Graph host. `down()` stops
    listening, so new connections are refused (as when Graph's host is unreachable), and
    closes each open connection once it is idle (an exchange under way finishes first: a
    refused connection is the fault here, not a reset); `up()` listens again, same port."""

    def __init__(self, upstream_port: int) -> None:
        import socket

        self._socket = socket
        self.upstream = ("127.0.0.1", upstream_port)
        self._lock = threading.Lock()
        self._pairs: list[dict[str, Any]] = []
        self._listener: Any = None
        self.port = 0
        self.up()

    def up(self) -> None:
        socket = self._socket
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the accepting thread: stop listening
                listener.shutdown(self._socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for pair in self._pairs:
                pair["closing"] = True
                if not pair["busy"]:
                    self._close(pair)

    def close(self) -> None:
        self.down()

    def _close(self, pair: dict[str, Any]) -> None:
        for sock in (pair["client"], pair["server"]):
            with contextlib.suppress(OSError):
                sock.shutdown(self._socket.SHUT_RDWR)

    def _accept(self, listener: Any) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = self._socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            pair = {"client": client, "server": server, "busy": False, "closing": False}
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair: dict[str, Any], request: bool) -> None:
        source, sink = (
            (pair["client"], pair["server"]) if request else (pair["server"], pair["client"])
        )
        try:
            while data := source.recv(65536):
                with self._lock:
                    pair["busy"] = request
                sink.sendall(data)
                if not request:
                    with self._lock:
                        if pair["closing"]:
                            self._close(pair)
        except OSError:
            pass
        finally:
            self._close(pair)

    def connection_file(self, tenant: CampaignTenant) -> Path:
        """A copy of emulator.json whose Graph URL is this proxy."""
        info = json.loads(tenant.emulator.connection_file.read_text())
        info["graph_url"] = f"http://127.0.0.1:{self.port}"
        path = tenant.folder / "proxied-emulator.json"
        path.write_text(json.dumps(info))
        path.chmod(0o600)
        return path


# --- delegated apply in a child process (resetPassword operations, F22) ---------------------


def delegated_child() -> None:
    """`python -c` entry: apply (or resume) the journal in argv[1] with the delegated token
    in ENTRA_BULK_TEST_TOKEN against the Graph root in argv[2] (the engine, as the CLI drives
    it, with a token a device-code sign-in would give)."""
    from runner.config import Limits
    from runner.engine.apply import ApplyOptions, Run
    from runner.engine.pacer import Pacer
    from runner.events import EventLog
    from runner.graph.client import GraphClient

    run_dir, graph_url = Path(sys.argv[1]), sys.argv[2]
    token = os.environ["ENTRA_BULK_TEST_TOKEN"]
    journal = Journal.open(run_dir)
    journal.take_over_if_dead(command="test delegated apply")
    client = GraphClient(root_url=graph_url, token=lambda: token)
    secrets = SecretsFile(run_dir)
    Run(
        journal=journal,
        client=client,
        pacer=Pacer(Limits()),
        secrets=secrets,
        events=EventLog(run_dir / "events.jsonl"),
        refresh_token=lambda: None,
        delegated=True,
        options=ApplyOptions(canary=0, reconcile_wait_s=2.0, verify_timeout_s=20.0),
        stop=lambda: False,
    ).run()
    secrets.close()
    journal.close()


def delegated_run_dir(
    tenant: CampaignTenant, folder: Path, users: Sequence[str]
) -> tuple[Path, str]:
    """A run folder with a journal of a delegated plan resetting `users`' passwords, and the
    delegated token (pa.admin's) to apply it with."""
    from runner import validate
    from runner.config import settings_from_connection
    from runner.graph.client import GraphClient
    from runner.planner import make_plan
    from runner.runstate import RunHeader, specs_from_plan

    source = folder / "delegated.yaml"
    source.write_text(
        "version: 1\nname: delegated\nactions: [reset_password]\ntargets:\n"
        + "".join(f"  - user: {upn}\n" for upn in users)
        + "safety: {required_approvals: 0, canary: 0}\n"
    )
    plan = validate.load(str(source)).plan
    assert plan is not None
    value = tenant.emulator.mint_user_token("pa.admin@contoso.com")

    class Tokens:
        description = "delegated test token"

        def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
            return value

    settings = settings_from_connection(tenant.emulator.info)
    with GraphClient(root_url=tenant.emulator.graph_url, token=lambda: value) as client:
        frozen_plan = make_plan(
            plan, client=client, tokens=Tokens(), settings=settings, now=dt.datetime.now(dt.UTC)
        )
    run_dir = folder / "run"
    run_dir.mkdir(mode=0o700)
    header = RunHeader(
        plan_name="delegated",
        ticket=None,
        digest=frozen_plan.digest,
        tenant_id=frozen_plan.tenant_id,
        emulated=True,
        author=dict(frozen_plan.content["author"]),
        approvals=(),
        content=frozen_plan.content,
        options={},
        created=dt.datetime.now(dt.UTC),
    )
    Journal.create(run_dir, header, specs_from_plan(frozen_plan)).close()
    return run_dir, value

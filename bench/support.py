"""Shared parts of the runner benchmarks (`throughput.py`, `small_plans.py`, `scale.py`,
`client_cost.py`): the runner is run as users run it, against an emulator in another process.

- `cached_tenant`: a generated tenant kept under `~/.cache/entra-bulk/bench/` (the same cache
  as `emulator_speed.py`), copied for every run so runs never see each other's writes.
- `EmulatorProcess`: `python -m runner emulator serve ...` in a child process, its admin API
  (ledger, request log), and its CPU time when it stops.
- `Workspace`: a scratch folder where `python -m runner ...` commands run as child processes
  (`ENTRA_BULK_EMULATOR` set, their own XDG folders), each timed with its CPU seconds and peak
  resident memory from `wait4`.
- Plan files: a CSV of users plus a YAML plan naming it in `targets_from`.

Nothing here asserts a figure: the scripts print them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEED = 1
DEFAULT_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entra-bulk" / "bench"
)
START_TIMEOUT_S = 600.0


class BenchError(Exception):
    """The benchmark could not run (the message says why)."""


# -- where and when ---------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores, memory and Python version, for the results."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
                break
    return (
        f"{model}, {cores} cores{memory}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


def now_utc() -> str:
    """The date and time, for the results."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_time(text: str) -> float:
    """An emulator time (`2026-11-28T07:22:23.443803Z`) as a POSIX timestamp."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_average() -> str:
    """The 1-minute load average when the figure was taken (the machine is shared)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


# -- the tenant: generated once, copied per run ----------------------------------------------


def _generator_digest() -> str:
    """A short digest of the tenant generator and schema: a changed generator is a new cache
    (the same rule, so the same folders, as `emulator_speed.py`)."""
    digest = hashlib.sha256()
    for name in ("seed.py", "store.py"):
        digest.update((ROOT / "runner" / "emulator" / name).read_bytes())
    return digest.hexdigest()[:12]


def cached_tenant(cache: Path, users: int) -> tuple[Path, float]:
    """The cached state folder of a tenant of `users` (generated now if missing) and the
    seconds its generation took. It is generated in a child process, so that this process
    stays small: a child's `ru_maxrss` starts from its parent's size when it was forked."""
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache / f"tenant-{users}-seed-{SEED}-{_generator_digest()}"
    stamp = folder / "generation.json"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  generating a tenant of {users:,} users into {folder} (once) ...", flush=True)
        started = time.perf_counter()
        code = (
            "import sys; from pathlib import Path; "
            "from runner.emulator import Emulator, EmulatorConfig; "
            "config = EmulatorConfig(state_dir=Path(sys.argv[1]), users=int(sys.argv[2]), "
            "seed=int(sys.argv[3]), throttle=False); "
            "Emulator(config).__enter__().stop()"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(folder), str(users), str(SEED)], check=True, cwd=ROOT
        )
        seconds = time.perf_counter() - started
        stamp.write_text(
            json.dumps({"users": users, "seconds": round(seconds, 1), "at": now_utc()}) + "\n"
        )
    return folder, float(json.loads(stamp.read_text())["seconds"])


def copy_tenant(cached: Path, into: Path) -> Path:
    """A private copy of a cached tenant (its old connection file removed)."""
    shutil.copytree(cached, into)
    (into / "emulator.json").unlink(missing_ok=True)
    return into


def eligible_upns(state: Path, count: int, *, members_only: bool = False) -> list[str]:
    """`count` UPNs, in the tenant's order, of users no rail refuses (no directory role, not
    break-glass) and for whom every seed action is a change: enabled cloud-only members; or,
    with `members_only`, every member (enough for `revoke_sessions`, which Graph does for
    synced and disabled members too, but not for guests). Read from the tenant's SQLite file,
    before the benchmark's clock."""
    where = "user_type = 'Member'"
    if not members_only:
        where += " AND account_enabled = 1 AND synced = 0"
    database = sqlite3.connect(f"file:{state / 'tenant.sqlite'}?mode=ro", uri=True)
    try:
        rows = database.execute(
            f"SELECT upn FROM users WHERE {where} "  # noqa: S608 - fixed text
            "AND id NOT IN (SELECT principal_id FROM role_members) "
            "AND id NOT IN (SELECT member_id FROM group_members WHERE group_id IN "
            "(SELECT id FROM groups_ WHERE display_name = 'Emergency Access Accounts')) "
            "ORDER BY rowid"
        ).fetchall()
    finally:
        database.close()
    if len(rows) < count:
        msg = f"the tenant has {len(rows)} users every action applies to; {count} are needed"
        raise BenchError(msg)
    return [str(row[0]) for row in rows[:count]]


def ledger_count(state: Path) -> int:
    """How many ledger rows the emulator holds (read from its SQLite file: cheap to poll)."""
    database = sqlite3.connect(f"file:{state / 'tenant.sqlite'}?mode=ro", uri=True)
    try:
        row = database.execute("SELECT COUNT(*) FROM ledger").fetchone()
    finally:
        database.close()
    return int(row[0])


def last_request_seq(state: Path) -> int:
    """The sequence number of the emulator's last logged request (read from its SQLite file,
    so that the request log need not be fetched whole)."""
    database = sqlite3.connect(f"file:{state / 'tenant.sqlite'}?mode=ro", uri=True)
    try:
        row = database.execute("SELECT COALESCE(MAX(seq), 0) FROM requests").fetchone()
    finally:
        database.close()
    return int(row[0])


# -- child processes ----------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Child:
    """A finished child process: exit code, output, times and peak memory."""

    argv: list[str]
    code: int
    out: str
    err: str
    started: float  # time.time() just before the process was created
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.sys_s

    def check(self, *codes: int) -> Child:
        """This child, or BenchError when its exit code is not one of `codes` (default 0)."""
        if self.code not in (codes or (0,)):
            tail = (self.err or self.out).strip().splitlines()[-8:]
            msg = f"{' '.join(self.argv[2:])} exited {self.code}:\n  " + "\n  ".join(tail)
            raise BenchError(msg)
        return self


class Running:
    """A child process started by `start`; `finish` reaps it with its resource use."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.argv = argv
        logs.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns()}"
        self._out_path = logs / f"{stem}.out"
        self._err_path = logs / f"{stem}.err"
        self._out = self._out_path.open("wb")
        self._err = self._err_path.open("wb")
        self.started = time.time()
        self._t0 = time.perf_counter()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL
        )
        self.pid = self.process.pid
        self.peak_hwm_kb = 0

    def sample(self) -> None:
        """Note the process's peak resident memory so far (VmHWM: its own, since exec)."""
        with contextlib.suppress(OSError):
            for text in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if text.startswith("VmHWM:"):
                    self.peak_hwm_kb = max(self.peak_hwm_kb, int(text.split()[1]))
                    return

    def poll(self) -> bool:
        """True while the process is running (it is not reaped here: `finish` does)."""
        ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if ended is None:
            self.sample()
        return ended is None

    def signal(self, sig: int) -> None:
        """Send a signal to the child (by its pid)."""
        os.kill(self.pid, sig)

    def finish(self, timeout_s: float | None = None) -> Child:
        """Wait for the child (killing it after `timeout_s`) and return what it did."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self.sample()
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid != 0:
                break
            if deadline is not None and time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(self.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - self._t0
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self._out.close()
        self._err.close()
        return Child(
            argv=self.argv,
            code=self.process.returncode,
            out=self._out_path.read_text(errors="replace"),
            err=self._err_path.read_text(errors="replace"),
            started=self.started,
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            # VmHWM sampled every 20 ms while it ran (a high-water mark, so only growth in its
            # last 20 ms could be missed); ru_maxrss when it ended before any sample (it would
            # count the parent's size at the fork).
            peak_rss_mb=(self.peak_hwm_kb or usage.ru_maxrss) / 1024,
        )


def python_argv(*args: str) -> list[str]:
    """`python -m runner ARGS` with this interpreter."""
    return [sys.executable, "-m", "runner", *args]


# -- the emulator in its own process -----------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class EmulatorOptions:
    """`entra-bulk emulator serve` options."""

    users: int
    time_scale: float = 1.0
    latency_ms: str | None = None  # "LO:HI"
    throttle: bool = True
    consistency_delay_s: float | None = None  # None: the emulator's default

    def describe(self) -> str:
        """How the emulator was started, for the printout."""
        parts = [
            f"{self.users:,} users",
            f"throttle {'on' if self.throttle else 'off'}",
            f"time scale {self.time_scale:g}",
            f"latency {self.latency_ms} ms" if self.latency_ms else "no latency",
        ]
        if self.consistency_delay_s is not None:
            parts.append(f"consistency delay {self.consistency_delay_s:g} s")
        return ", ".join(parts)


@dataclass(slots=True)
class EmulatorProcess:
    """`python -m runner emulator serve` over a state folder, in a child process."""

    state: Path
    options: EmulatorOptions
    logs: Path
    info: dict[str, Any] = field(default_factory=dict)
    admin: httpx.Client | None = None
    cpu_s: float = 0.0
    _running: Running | None = None

    @property
    def connection_file(self) -> Path:
        """The emulator's `emulator.json`."""
        return self.state / "emulator.json"

    def __enter__(self) -> EmulatorProcess:
        opts = self.options
        argv = [
            "emulator",
            "serve",
            "--state",
            str(self.state),
            "--users",
            str(opts.users),
            "--seed",
            str(SEED),
            "--time-scale",
            f"{opts.time_scale:g}",
            "--throttle",
            "on" if opts.throttle else "off",
        ]
        if opts.latency_ms:
            argv += ["--latency-ms", opts.latency_ms]
        if opts.consistency_delay_s is not None:
            argv += ["--consistency-delay", f"{opts.consistency_delay_s:g}"]
        self.connection_file.unlink(missing_ok=True)
        env = dict(os.environ)
        env.pop("ENTRA_BULK_EMULATOR", None)
        self._running = Running(python_argv(*argv), cwd=self.state, env=env, logs=self.logs)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.connection_file.exists():
            if not self._running.poll():
                child = self._running.finish()
                msg = f"the emulator did not start: {child.err.strip()[-400:]}"
                raise BenchError(msg)
            if time.monotonic() > deadline:
                raise BenchError("the emulator did not start in time")
            time.sleep(0.05)
        while True:  # the file is written, then the server answers
            with contextlib.suppress(ValueError):
                self.info = json.loads(self.connection_file.read_text())
                break
            time.sleep(0.05)
        self.admin = httpx.Client(base_url=self.info["admin_url"], timeout=600, trust_env=False)
        self.admin.get("/state").raise_for_status()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.admin is not None:
            self.admin.close()
        if self._running is not None:
            with contextlib.suppress(ProcessLookupError):
                self._running.signal(signal.SIGTERM)
            child = self._running.finish(timeout_s=60)
            self.cpu_s = child.cpu_s
            self._running = None

    @property
    def pid(self) -> int:
        """The emulator's process id."""
        assert self._running is not None
        return self._running.pid

    def _admin(self) -> httpx.Client:
        assert self.admin is not None
        return self.admin

    def ledger(self, since: int = 0) -> list[dict[str, Any]]:
        """Every ledger row after `since` (paged by sequence number)."""
        rows: list[dict[str, Any]] = []
        while True:
            page = self._admin().get("/ledger", params={"since": since})
            page.raise_for_status()
            value = page.json()["value"]
            if not value:
                return rows
            rows.extend(value)
            since = int(value[-1]["seq"])

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Every request-log row (requests and `$batch` items) after `since`."""
        page = self._admin().get("/requests", params={"since": since})
        page.raise_for_status()
        return list(page.json()["value"])


def write_connection_copy(
    emulator: EmulatorProcess, into: Path, *, limits: dict[str, Any] | None = None
) -> Path:
    """A copy of the emulator's connection file, with `limits` changed (for the pacer: the
    budget the runner believes in, not the emulator's quotas, which stay as they are)."""
    info = json.loads(emulator.connection_file.read_text())
    if limits:
        info["limits"] = {**info.get("limits", {}), **limits}
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_text(json.dumps(info, indent=2))
    into.chmod(0o600)
    return into


# -- running commands like a user ---------------------------------------------------------------


@dataclass(slots=True)
class Workspace:
    """A scratch folder where `python -m runner` commands run against one emulator."""

    folder: Path
    connection_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The children's environment: the emulator, and XDG folders of their own."""
        env = dict(os.environ)
        env.update(
            {
                "ENTRA_BULK_EMULATOR": str(self.connection_file),
                "XDG_STATE_HOME": str(self.folder / "xdg-state"),
                "XDG_CONFIG_HOME": str(self.folder / "xdg-config"),
                "XDG_DATA_HOME": str(self.folder / "xdg-data"),
                "NO_COLOR": "1",
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, *args: str) -> Running:
        """Start `python -m runner ARGS` here."""
        return Running(
            python_argv(*args), cwd=self.folder, env=self.env(), logs=self.folder / "logs"
        )

    def cli(self, *args: str, timeout_s: float | None = None) -> Child:
        """Run `python -m runner ARGS` here to the end."""
        return self.start(*args).finish(timeout_s)

    def run_dirs(self) -> list[Path]:
        """The run folders under ./runs, oldest first."""
        runs = self.folder / "runs"
        return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


def write_plan(
    folder: Path,
    name: str,
    upns: Sequence[str],
    actions: Sequence[str],
    *,
    required_approvals: int = 1,
    extra_safety: str = "",
) -> tuple[Path, Path]:
    """`<name>.csv` (a `user` column) and `<name>.yaml` naming it in `targets_from`."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{name}.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as out:
        out.write("user\n")
        for upn in upns:
            out.write(upn + "\n")
    yaml_path = folder / f"{name}.yaml"
    safety = f"required_approvals: {required_approvals}"
    if extra_safety:
        safety += f", {extra_safety}"
    yaml_path.write_text(
        "version: 1\n"
        f"name: {name}\n"
        "ticket: BENCH-7\n"
        f"actions: [{', '.join(actions)}]\n"
        f"targets_from: {csv_path.name}\n"
        f"safety: {{{safety}}}\n",
        encoding="utf-8",
    )
    return yaml_path, csv_path


def plan_changes(frozen_plan: Path) -> int:
    """The number of changes (target × action to send) in a frozen plan."""
    summary = json.loads(frozen_plan.read_text())["content"]["summary"]
    return int(summary["actions"]["change"])


def run_report(run_dir: Path) -> dict[str, Any]:
    """A run's report.json without its items (counts, timeline)."""
    data = json.loads((run_dir / "report.json").read_text())
    data.pop("items", None)
    return dict(data)


def pacing_events(run_dir: Path) -> list[dict[str, Any]]:
    """The pacer's events of a run (events.jsonl `pacing` lines), in order."""
    events = []
    path = run_dir / "events.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "pacing":
                    events.append(event)
    return events


@contextlib.contextmanager
def scratch(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder (kept, and its path printed, with `keep`)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"(kept {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def fmt_s(seconds: float) -> str:
    """Seconds with sensible precision."""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"

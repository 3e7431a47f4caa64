"""Scale: validate, plan, apply and resume a plan of 100,000 targets on one machine.

    .venv/bin/python bench/scale.py [--targets 100000] [--tenant-users 110000]
        [--time-scale 1000] [--kill-at 0.5] [--steps validate plan apply resume]
        [--cache DIR] [--keep]

Every command runs as `python -m runner ...` in its own process; its wall time, CPU seconds
and peak resident memory (`ru_maxrss` from `wait4`) are printed. The emulator runs in another
process with throttling off and no latency; `--time-scale` (default 1,000) lifts the runner's
own pacer, which budgets the published quotas times the time scale, out of the way.

1. validate: `validate users.csv --actions revoke_sessions` of a 100,000-row CSV;
2. plan: `plan scale.yaml` (the YAML names the CSV in `targets_from`): 100,000 users resolved,
   read and frozen (plus `approve`);
3. apply: the whole plan (100,000 × `revoke_sessions`: drift re-reads, canary, writes,
   verification), with the writes counted in the emulator's ledger;
4. resume: the plan applied again in a new run folder, killed with SIGKILL once `--kill-at` of
   its writes are in the ledger, then `apply --resume`: seconds from the process's start to its
   first request and to its first write in the emulator's request log, and the resume's time
   and memory to the end.

Targets: peak memory ≤ 500 MB for plan and apply; resume's first new request ≤ 10 s.
The targets are members without a directory role (every one a `revoke_sessions` write), the
first 100,000 of a 110,000-user tenant, generated once and cached (about 12 s, 175 MB).
Exits 0 with any figure, 1 when it could not run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from support import (
    DEFAULT_CACHE,
    BenchError,
    Child,
    EmulatorOptions,
    EmulatorProcess,
    Workspace,
    cached_tenant,
    copy_tenant,
    eligible_upns,
    fmt_s,
    last_request_seq,
    ledger_count,
    load_average,
    machine,
    now_utc,
    parse_time,
    run_report,
    scratch,
    write_plan,
)

ACTION = "revoke_sessions"
MEMORY_TARGET_MB = 500.0
RESUME_TARGET_S = 10.0


def line(name: str, child: Child, extra: str = "") -> None:
    """One command's figures."""
    print(
        f"  {name:<9} {fmt_s(child.wall_s):>9} wall, {child.cpu_s:6.1f} s CPU, "
        f"peak RSS {child.peak_rss_mb:6.0f} MB (exit {child.code}){extra}",
        flush=True,
    )


def first_after(emulator: EmulatorProcess, since: int, deadline_s: float) -> dict[str, Any]:
    """Follow the request log from `since` until a write shows: the first request and the
    first write (`$batch` items that are not GETs) after `since`."""
    first: dict[str, Any] | None = None
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        rows = emulator.requests(since)
        for row in rows:
            if first is None:
                first = row
            if row["batch"] is not None and row["method"] != "GET":
                return {"first": first, "write": row}
        if rows:
            since = int(rows[-1]["seq"])
        time.sleep(0.1)
    return {"first": first, "write": None}


def bench(args: argparse.Namespace, root: Path) -> None:
    """Everything, in order."""
    cached, generation_s = cached_tenant(args.cache, args.tenant_users)
    print(
        f"tenant of {args.tenant_users:,} users (generated in {generation_s:.1f} s, cached); "
        f"plan: {args.targets:,} users x {ACTION}"
    )
    state = copy_tenant(cached, root / "tenant")
    upns = eligible_upns(state, args.targets, members_only=True)
    options = EmulatorOptions(
        users=args.tenant_users, time_scale=args.time_scale, latency_ms=None, throttle=False
    )
    print(f"emulator in its own process: {options.describe()}")
    source, csv_path = write_plan(root / "work", "scale", upns, [ACTION], extra_safety="")
    steps = set(args.steps)
    with EmulatorProcess(state, options, logs=root / "logs") as emulator:
        work = Workspace(root / "work", emulator.connection_file)
        if "validate" in steps:
            validate = work.cli(
                "validate", str(csv_path), "--actions", ACTION, "--name", "scale"
            ).check()
            line("validate", validate, f"; {csv_path.stat().st_size / 1e6:.1f} MB of CSV")
        if not steps & {"plan", "apply", "resume"}:
            return
        frozen = work.folder / "scale.plan.json"
        plan = work.cli("--tenant", "emulator", "plan", str(source), "-o", str(frozen)).check()
        line("plan", plan, f"; frozen plan {frozen.stat().st_size / 1e6:.0f} MB")
        work.cli("approve", str(frozen), "--approver", "bench-approver").check()
        apply_args = ("--tenant", "emulator", "apply", str(frozen), "--yes")
        apply_args += ("--confirm-count", str(len(upns)))
        if "apply" in steps:
            before = ledger_count(state)
            apply = work.cli(*apply_args).check(0, 1)
            writes = ledger_count(state) - before
            (run_dir,) = work.run_dirs()
            counts = {k: v for k, v in run_report(run_dir)["counts"].items() if v}
            journal_mb = (run_dir / "journal.sqlite").stat().st_size / 1e6
            line(
                "apply",
                apply,
                f"; {writes:,} writes ({writes / apply.wall_s:.0f}/s of wall), {counts}, "
                f"journal {journal_mb:.0f} MB",
            )
        if "resume" in steps:
            resume_step(args, work, emulator, state, apply_args)
    print(f"  emulator CPU over all steps: {emulator.cpu_s:.1f} s")


def resume_step(
    args: argparse.Namespace,
    work: Workspace,
    emulator: EmulatorProcess,
    state: Path,
    apply_args: tuple[str, ...],
) -> None:
    """Apply again, SIGKILL part way, resume: time to the first new request and write."""
    known = set(work.run_dirs())
    before = ledger_count(state)
    running = work.start(*apply_args)
    goal = before + int(args.targets * args.kill_at)
    while ledger_count(state) < goal:
        if not running.poll():
            raise BenchError("the apply to be killed ended before it reached --kill-at")
        time.sleep(0.05)
    running.signal(signal.SIGKILL)
    killed = running.finish()
    time.sleep(0.5)  # the emulator finishes answering what was in flight
    done_at_kill = ledger_count(state) - before
    (run_dir,) = set(work.run_dirs()) - known
    line("killed", killed, f" after {done_at_kill:,} writes (SIGKILL)")
    since = last_request_seq(state)
    resumed = work.start("--tenant", "emulator", "apply", "--resume", str(run_dir))
    firsts = first_after(emulator, since, deadline_s=600)
    resume = resumed.finish().check(0, 1)
    writes = ledger_count(state) - before
    counts = {k: v for k, v in run_report(run_dir)["counts"].items() if v}
    line("resume", resume, f"; {counts}")
    first, write = firsts["first"], firsts["write"]
    if first is not None:
        print(
            f"  resume: first request {parse_time(first['time']) - resumed.started:.2f} s "
            f"after the process started ({first['method']} {first['path'][:60]})"
        )
    if write is not None:
        print(
            f"  resume: first write   {parse_time(write['time']) - resumed.started:.2f} s "
            f"after the process started (target ≤ {RESUME_TARGET_S:.0f} s)"
        )
    print(
        f"  second run: {writes:,} writes for {args.targets:,} targets "
        f"({writes - args.targets:+,} re-sent after the kill: revoke_sessions is repeatable)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--tenant-users", type=int, default=110_000)
    parser.add_argument("--time-scale", type=float, default=1000.0)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of writes, 0-1")
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=["validate", "plan", "apply", "resume"],
        default=["validate", "plan", "apply", "resume"],
        help="plan runs whenever apply or resume does",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    print(f"scale, {now_utc()}: {machine()}; load {load_average()}")
    print(f"targets: peak RSS ≤ {MEMORY_TARGET_MB:.0f} MB, resume ≤ {RESUME_TARGET_S:.0f} s")
    try:
        with scratch("bench-scale-", keep=args.keep) as root:
            bench(args, root)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        print(f"scale: could not run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

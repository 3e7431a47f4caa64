"""Client cost: CPU seconds the runner's own process spends per 1,000 actions applied.

    .venv/bin/python bench/client_cost.py [--scenarios fast paced] [--targets N]
        [--profile] [--cache DIR] [--keep]

`python -m runner apply` runs in its own process against an emulator in another, so the two
processes' CPU times (user + system, from `wait4`) are separate. Actions applied = items the
run's report counts as verified or succeeded.

Scenarios:

- fast: 10,000 users × (`disable_account`, `revoke_sessions`) = 20,000 actions, throttling off,
  no latency, time scale 1,000 (the runner's pacer out of the way): the runner as fast as the
  machine lets it go, so its cost per action is all there is to see;
- paced: the throughput benchmark's run (3,000 users × the same 2 actions, throttling on at
  time scale 10, latency 50-150 ms): the runner waiting on the budget most of the time.

`plan` is measured too (CPU per 1,000 targets). `--profile` runs the fast apply under
cProfile and prints where its CPU goes (the 15 functions with the most time of their own).
Exits 0 with any figure, 1 when it could not run.
"""

from __future__ import annotations

import argparse
import pstats
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import (
    DEFAULT_CACHE,
    BenchError,
    EmulatorOptions,
    EmulatorProcess,
    Running,
    Workspace,
    cached_tenant,
    copy_tenant,
    eligible_upns,
    fmt_s,
    load_average,
    machine,
    now_utc,
    run_report,
    scratch,
    write_plan,
)

ACTIONS = ("disable_account", "revoke_sessions")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One way of running the apply."""

    name: str
    targets: int
    tenant_users: int
    options: EmulatorOptions


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios asked for."""
    fast_targets = args.targets or 10_000
    known = {
        "fast": Scenario(
            "fast",
            fast_targets,
            110_000,
            EmulatorOptions(users=110_000, time_scale=1000.0, latency_ms=None, throttle=False),
        ),
        "paced": Scenario(
            "paced",
            args.targets or 3000,
            5000,
            EmulatorOptions(users=5000, time_scale=10.0, latency_ms="50:150", throttle=True),
        ),
    }
    return [known[name] for name in args.scenarios]


def run(args: argparse.Namespace, scenario: Scenario, root: Path) -> dict[str, Any]:
    """Plan, approve, apply; CPU of each process."""
    cached, _ = cached_tenant(args.cache, scenario.tenant_users)
    folder = root / scenario.name
    state = copy_tenant(cached, folder / "tenant")
    upns = eligible_upns(state, scenario.targets)
    with EmulatorProcess(state, scenario.options, logs=folder / "logs") as emulator:
        work = Workspace(folder / "work", emulator.connection_file)
        source, _ = write_plan(work.folder, "cost", upns, ACTIONS)
        frozen = work.folder / "cost.plan.json"
        plan = work.cli("--tenant", "emulator", "plan", str(source), "-o", str(frozen)).check()
        work.cli("approve", str(frozen), "--approver", "bench-approver").check()
        apply = work.cli(
            "--tenant", "emulator", "apply", str(frozen), "--yes", "--confirm-count", str(len(upns))
        ).check(0, 1)
    run_dir = work.run_dirs()[-1]
    counts = run_report(run_dir)["counts"]
    applied = int(counts.get("verified", 0)) + int(counts.get("succeeded", 0))
    return {
        "scenario": scenario,
        "plan": plan,
        "apply": apply,
        "applied": applied,
        "counts": {k: v for k, v in counts.items() if v},
        "emulator_cpu_s": emulator.cpu_s,
    }


def show(result: dict[str, Any]) -> None:
    """Print one scenario's figures."""
    scenario: Scenario = result["scenario"]
    plan, apply, applied = result["plan"], result["apply"], result["applied"]
    per_action = apply.cpu_s / applied * 1000 if applied else float("nan")
    per_target = plan.cpu_s / scenario.targets * 1000
    print(
        f"\n[{scenario.name}] {scenario.targets:,} users x {len(ACTIONS)} actions; emulator: "
        f"{scenario.options.describe()}"
    )
    print(
        f"  apply   {per_action:.2f} CPU s per 1,000 actions applied "
        f"({apply.cpu_s:.1f} s CPU: {apply.user_s:.1f} user + {apply.sys_s:.1f} system, "
        f"for {applied:,} actions in {fmt_s(apply.wall_s)}; peak RSS {apply.peak_rss_mb:.0f} MB)"
    )
    print(
        f"  plan    {per_target:.2f} CPU s per 1,000 targets "
        f"({plan.cpu_s:.1f} s CPU in {fmt_s(plan.wall_s)}; peak RSS {plan.peak_rss_mb:.0f} MB)"
    )
    print(f"  emulator process: {result['emulator_cpu_s']:.1f} s CPU over the whole scenario")
    print(f"  result  {result['counts']}")


def profiled(args: argparse.Namespace, root: Path) -> None:
    """The fast apply under cProfile (`python -m cProfile -o FILE -m runner ...`): where the
    runner's CPU goes."""
    scenario = next(s for s in scenarios(args) if s.name == "fast")
    cached, _ = cached_tenant(args.cache, scenario.tenant_users)
    folder = root / "profile"
    state = copy_tenant(cached, folder / "tenant")
    upns = eligible_upns(state, scenario.targets)
    with EmulatorProcess(state, scenario.options, logs=folder / "logs") as emulator:
        work = Workspace(folder / "work", emulator.connection_file)
        source, _ = write_plan(work.folder, "cost", upns, ACTIONS)
        frozen = work.folder / "cost.plan.json"
        work.cli("--tenant", "emulator", "plan", str(source), "-o", str(frozen)).check()
        work.cli("approve", str(frozen), "--approver", "bench-approver").check()
        output = folder / "apply.prof"
        argv = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "runner"]
        argv += ["--tenant", "emulator", "apply", str(frozen), "--yes"]
        argv += ["--confirm-count", str(len(upns))]
        child = Running(argv, cwd=work.folder, env=work.env(), logs=work.folder / "logs")
        finished = child.finish().check(0, 1)
    print(
        f"\n[profile] fast apply under cProfile: {finished.cpu_s:.1f} s CPU "
        f"(the profiler adds its own); the 15 functions with the most time of their own:"
    )
    stats = pstats.Stats(str(output))
    stats.sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scenarios", nargs="+", choices=["fast", "paced"], default=["fast", "paced"]
    )
    parser.add_argument("--targets", type=int, default=None, help="users (default per scenario)")
    parser.add_argument("--profile", action="store_true", help="also profile the fast apply")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    print(f"client cost, {now_utc()}: {machine()}; load {load_average()}")
    try:
        with scratch("bench-cost-", keep=args.keep) as root:
            for scenario in scenarios(args):
                show(run(args, scenario, root))
            if args.profile:
                profiled(args, root)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        print(f"client_cost: could not run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput: does `apply` run at Graph's write ceiling without tripping it?

    .venv/bin/python bench/throughput.py [--targets 3000] [--tenant-users 5000]
        [--time-scale 10] [--latency-ms 50:150] [--consistency-delay S]
        [--modes paced unpaced] [--max-share X] [--timeline] [--cache DIR] [--keep]

A plan of `--targets` users × 2 writes (`disable_account`, `revoke_sessions`: 6,000 writes,
twice the emulator's write bucket of 3,000) is planned, approved and applied end to end with
`python -m runner` against an emulator in another process (throttling on, the published
3,000 writes / 150 s at `--time-scale`, request latency `--latency-ms`). The targets are
enabled cloud-only members without a directory role, so every item is a write.

Figures, from the emulator's ledger and request log (not from the runner's own account):

- writes: ledger rows; span: first to last ledger write; achieved writes/s = writes ÷ span;
- the emulator's ceiling: writes_per_150s ÷ 150 × time scale, and its bucket's capacity;
- efficiency = theoretical minimum ÷ span, the minimum being (writes − capacity) ÷ ceiling
  (the bucket starts full, so its capacity can go at once; the rest comes at the ceiling);
- 429s as a share of writes (throttled `$batch` items and envelopes, writes and reads);
- failed items (failed, unknown or never finished, from the run's report);
- what the pacer did (429s it met, pauses, slow-downs, lowest AIMD factor) from events.jsonl.

Targets: efficiency ≥ 0.9, 429s ≤ 1 % of writes, 0 failed items.

Modes: `paced` uses the runner as configured (the emulator profile reads the quotas and the
time scale from `emulator.json`); `unpaced` gives the runner a copy of `emulator.json` whose
quotas are a billion (the pacer never waits), to show what the pacer prevents; the emulator
keeps enforcing the real quotas in both. Each mode gets a fresh copy of the tenant and a
fresh emulator (buckets full).

`--consistency-delay` sets the emulator's delay before a revocation or a disabling shows in
reads. Its default here is the emulator's own 1.5 s divided by the time scale (0.15 s at 10),
like every other wait of the emulated tenant: the canary waits for it before the rest of
the run starts, and an unscaled 1.5 s would weigh ten times more against a 150 s window
compressed to 15 s than it does against Graph. Pass `--consistency-delay 1.5` for the
unscaled figure. Exits 0 with any figure, 1 when it could not run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from support import (
    DEFAULT_CACHE,
    BenchError,
    EmulatorOptions,
    EmulatorProcess,
    Workspace,
    cached_tenant,
    copy_tenant,
    eligible_upns,
    fmt_s,
    load_average,
    machine,
    now_utc,
    pacing_events,
    parse_time,
    plan_changes,
    run_report,
    scratch,
    write_connection_copy,
    write_plan,
)

ACTIONS = ("disable_account", "revoke_sessions")
EFFICIENCY_TARGET = 0.9
THROTTLED_TARGET = 0.01
UNPACED = 1_000_000_000
DEFAULT_CONSISTENCY_DELAY_S = 1.5  # the emulator's default


def run_mode(
    args: argparse.Namespace, mode: str, cached: Path, root: Path, repeat: int
) -> dict[str, Any]:
    """Plan, approve and apply once against a fresh emulator; the figures."""
    folder = root / f"{mode}-{repeat}"
    folder.mkdir()
    state = copy_tenant(cached, folder / "tenant")
    upns = eligible_upns(state, args.targets)
    options = EmulatorOptions(
        users=args.tenant_users,
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        throttle=True,
        consistency_delay_s=args.consistency_delay,
    )
    with EmulatorProcess(state, options, logs=folder / "logs") as emulator:
        limits: dict[str, Any] = {}
        if mode == "unpaced":
            limits = {"writes_per_150s": UNPACED, "resource_units_per_10s": UNPACED}
        if args.max_share is not None:
            limits["max_share"] = args.max_share
        connection = write_connection_copy(
            emulator, folder / "work" / "emulator.json", limits=limits
        )
        work = Workspace(folder / "work", connection)
        source, _ = write_plan(work.folder, "throughput", upns, ACTIONS)
        frozen = work.folder / "throughput.plan.json"
        plan = work.cli("--tenant", "emulator", "plan", str(source), "-o", str(frozen)).check()
        work.cli("approve", str(frozen), "--approver", "bench-approver").check()
        before = len(emulator.ledger())
        apply = work.cli(
            "--tenant",
            "emulator",
            "apply",
            str(frozen),
            "--yes",
            "--confirm-count",
            str(len(upns)),
        ).check(0, 1, 4, 5)
        ledger = emulator.ledger()[before:]
        requests = emulator.requests()
        limits_now = emulator.info["limits"]
        time_scale = float(emulator.info["time_scale"])
    (run_dir,) = work.run_dirs()
    report = run_report(run_dir)
    counts = report["counts"]
    failed = sum(counts.get(k, 0) for k in ("failed", "unknown", "planned", "intent"))
    left = sum(counts.get(k, 0) for k in ("planned", "intent"))
    times = sorted(parse_time(row["time"]) for row in ledger)
    writes = len(times)
    span = times[-1] - times[0] if writes > 1 else 0.0
    capacity = float(limits_now["writes_per_150s"])
    ceiling = capacity / 150.0 * time_scale
    minimum = max(writes - capacity, 0.0) / ceiling
    throttled = [row for row in requests if row["status"] == 429]
    throttled_writes = [row for row in throttled if row["method"] != "GET"]
    pacing = pacing_events(run_dir)
    kinds = Counter(event["kind"] for event in pacing)
    factors = [float(event["factor"]) for event in pacing if event["kind"] == "slow_down"]
    return {
        "mode": mode,
        "repeat": repeat,
        "changes": plan_changes(frozen),
        "writes": writes,
        "span_s": span,
        "rate": writes / span if span else 0.0,
        "ceiling": ceiling,
        "capacity": capacity,
        "minimum_s": minimum,
        "efficiency": minimum / span if span else 0.0,
        "throttled": len(throttled),
        "throttled_writes": len(throttled_writes),
        "failed": failed,
        "left": left,
        "counts": {k: v for k, v in counts.items() if v},
        "exit": apply.code,
        "plan_s": plan.wall_s,
        "apply_s": apply.wall_s,
        "apply_cpu_s": apply.cpu_s,
        "apply_rss_mb": apply.peak_rss_mb,
        "emulator_cpu_s": emulator.cpu_s,
        "pacer": dict(kinds),
        "lowest_factor": min(factors) if factors else 1.0,
        "paused_s": float(report["timeline"].get("paused_s") or 0.0),
        "timeline": _per_second(times),
        "gaps": _gaps(times),
    }


def _per_second(times: list[float]) -> list[int]:
    if not times:
        return []
    start = times[0]
    seconds = [0] * (int(times[-1] - start) + 1)
    for moment in times:
        seconds[int(moment - start)] += 1
    return seconds


def _gaps(times: list[float]) -> list[tuple[float, float]]:
    """The three longest pauses between ledger writes: (seconds after the first, length)."""
    pairs = [(times[i] - times[0], times[i + 1] - times[i]) for i in range(len(times) - 1)]
    return sorted(pairs, key=lambda pair: -pair[1])[:3]


def show(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print one mode's figures."""
    writes = result["writes"]
    share = result["throttled"] / writes if writes else 0.0
    print(
        f"\n[{result['mode']} {result['repeat'] + 1}] apply exit {result['exit']}; "
        f"{result['counts']}"
    )
    print(f"  writes            {writes:,} in the ledger ({result['changes']:,} planned changes)")
    print(f"  write span        {fmt_s(result['span_s'])} (first to last write in the ledger)")
    print(
        f"  achieved          {result['rate']:.1f} writes/s; ceiling {result['ceiling']:.0f} "
        f"writes/s, bucket {result['capacity']:,.0f} "
        f"({result['rate'] / result['ceiling']:.2f} x ceiling over the span)"
    )
    print(
        f"  efficiency        {result['efficiency']:.3f} = minimum {fmt_s(result['minimum_s'])} "
        f"÷ span (target ≥ {EFFICIENCY_TARGET})"
    )
    print(
        f"  429s              {result['throttled']:,} = {share:.2%} of writes "
        f"({result['throttled_writes']:,} on writes; target ≤ {THROTTLED_TARGET:.0%})"
    )
    left = f", of which {result['left']:,} never finished" if result["left"] else ""
    print(f"  failed items      {result['failed']:,}{left} (target 0)")
    print(
        f"  pacer             events {result['pacer'] or 'none'}; lowest factor "
        f"{result['lowest_factor']:.2f}; paused {result['paused_s']:.1f} s"
    )
    gaps = ", ".join(f"{length:.2f} s at +{at:.1f} s" for at, length in result["gaps"])
    print(f"  longest gaps      {gaps}")
    print(
        f"  wall              plan {fmt_s(result['plan_s'])}, apply {fmt_s(result['apply_s'])} "
        f"(apply CPU {result['apply_cpu_s']:.1f} s, peak RSS {result['apply_rss_mb']:.0f} MB; "
        f"emulator CPU {result['emulator_cpu_s']:.1f} s)"
    )
    if args.timeline:
        print(f"  writes per second {result['timeline']}")


def summary(mode: str, results: list[dict[str, Any]]) -> None:
    """The median and range of the runs of one mode."""

    def spread(key: str, fmt: str) -> str:
        values = [float(r[key]) for r in results]
        middle = statistics.median(values)
        return f"{middle:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    shares = [r["throttled"] / r["writes"] if r["writes"] else 0.0 for r in results]
    print(
        f"\n[{mode}] {len(results)} runs, median (range): "
        f"efficiency {spread('efficiency', '.3f')}, "
        f"{spread('rate', '.1f')} writes/s, span {spread('span_s', '.1f')} s, 429s "
        f"{statistics.median(shares):.2%} ({min(shares):.2%}-{max(shares):.2%}) of writes, "
        f"failed items {spread('failed', '.0f')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=3000, help="users in the plan")
    parser.add_argument("--tenant-users", type=int, default=5000, help="users in the tenant")
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--latency-ms", default="50:150", help="emulator latency LO:HI")
    parser.add_argument(
        "--consistency-delay",
        type=float,
        default=None,
        help="emulator consistency delay in seconds [default: 1.5 / time scale]",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=["paced", "unpaced"], default=["paced", "unpaced"]
    )
    parser.add_argument(
        "--max-share",
        type=float,
        default=None,
        help="put limits.max_share in the runner's copy of emulator.json",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode")
    parser.add_argument("--timeline", action="store_true", help="print writes per second")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    if args.consistency_delay is None:
        args.consistency_delay = DEFAULT_CONSISTENCY_DELAY_S / args.time_scale
    print(f"throughput, {now_utc()}: {machine()}; load {load_average()}")
    try:
        cached, generation_s = cached_tenant(args.cache, args.tenant_users)
        print(
            f"tenant of {args.tenant_users:,} users (generated in {generation_s:.1f} s, cached); "
            f"plan: {args.targets:,} users x {', '.join(ACTIONS)}"
        )
        described = EmulatorOptions(
            users=args.tenant_users,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            consistency_delay_s=args.consistency_delay,
        ).describe()
        print(f"emulator in its own process: {described}")
        with scratch("bench-throughput-", keep=args.keep) as root:
            for mode in args.modes:
                results = []
                for repeat in range(args.repeat):
                    results.append(run_mode(args, mode, cached, root, repeat))
                    show(results[-1], args)
                if len(results) > 1:
                    summary(mode, results)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        print(f"throughput: could not run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

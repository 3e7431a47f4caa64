"""Reliability campaigns at full size, and their figures (issue 7; reliability.md Part 3).

    .venv/bin/python bench/campaigns.py             # the CI size (~3 minutes)
    .venv/bin/python bench/campaigns.py --full      # 1,000 crash trials, slow faults, 25x fuzz
    .venv/bin/python bench/campaigns.py --atheris 200000   # also atheris, where it installs

The campaigns are the tests of `tests/campaigns/` (crash campaign, fault matrix, secret
canaries, bad inputs, hypothesis fuzzing); `--full` runs them with `ENTRA_BULK_FULL=1`, which
enlarges them and adds the ones marked `slow`. This script runs pytest on them and prints the
figures they recorded (the "Reliability campaigns" section of pytest's summary), then the
machine and the date, ready for `bench/RESULTS.md`.

`--atheris N` also runs coverage-guided fuzzing (atheris, `pip install atheris`; skipped when
it is not installed) for N executions of each target: the YAML plan loader, the CSV loader
and the `$batch` answer parser (JSON decoding + correlation by id). Allowed outcomes are a
result or `PlanFileError`; anything else stops the fuzzer and is reported.

Exit status: non-zero only when the campaigns could not run (a failing campaign is a figure:
its problems are printed with the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("yaml", "csv", "batch")


def run_campaigns(full: bool, extra: list[str]) -> int:
    env = dict(os.environ)
    if full:
        env["ENTRA_BULK_FULL"] = "1"
    else:
        env.pop("ENTRA_BULK_FULL", None)
    argv = [sys.executable, "-m", "pytest", "tests/campaigns", "-q", "-p", "no:cacheprovider"]
    argv += ["-o", "addopts=--import-mode=importlib", "--timeout=0", *extra]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    text = done.stdout
    section = re.search(r"=+ Reliability campaigns =+\n(.*?)(?:\n=+ |\Z)", text, re.S)
    print(section.group(1).rstrip() if section else text[-5000:])
    tail = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print(f"\npytest: {tail[-1] if tail else 'no summary'} ({time.monotonic() - started:.0f} s)")
    if done.returncode not in (0, 1):
        print(done.stderr[-3000:], file=sys.stderr)
    if done.returncode == 1:
        failures = re.findall(r"^(E .*)$", text, re.M)
        print("\nproblems found:\n" + "\n".join(failures[:60]))
    return done.returncode


# --- atheris ---------------------------------------------------------------------------------


def atheris_child(target: str, runs: int) -> None:
    """Run in a child process: fuzz one target with atheris for `runs` executions."""
    import atheris

    with atheris.instrument_imports():
        from runner.graph.client import correlate
        from runner.graph.facts import GraphResponse
        from runner.planfile import CsvDialect, parse_csv, parse_yaml
        from runner.problem import PlanFileError

    count = 0

    def one(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            if target == "yaml":
                parse_yaml(data, path="fuzz.yaml")
            elif target == "csv":
                parse_csv(data, path="fuzz.csv", dialect=CsvDialect())
            else:
                try:
                    body = json.loads(data)
                except (ValueError, UnicodeDecodeError):
                    body = data.decode("utf-8", "replace")
                result = correlate(GraphResponse(status=200, body=body), ["1", "2", "3"])
                assert set(result.items) | set(result.missing) == {"1", "2", "3"}
        except PlanFileError:
            pass

    corpus = ROOT / "tests" / "fixtures" / "plans"
    work = Path(tempfile.mkdtemp(prefix=f"entra-bulk-atheris-{target}-"))
    seeds = work / "corpus"
    seeds.mkdir()
    for path in corpus.iterdir():
        if path.is_file() and path.stat().st_size < 64 * 1024:
            (seeds / path.name).write_bytes(path.read_bytes())
    started = time.monotonic()
    atheris.Setup(
        # -timeout=5: instrumented code runs several times slower than plain (the worst plain
        # case, 4 KB of unclosed '[', takes ~0.35 s); Z1's limit is 1 s uninstrumented.
        [
            sys.argv[0],
            f"-atheris_runs={runs}",
            "-max_len=4096",
            "-timeout=5",
            f"-artifact_prefix={work}/",
            str(seeds),
        ],
        one,
    )
    try:
        atheris.Fuzz()
    finally:
        print(
            json.dumps(
                {
                    "target": target,
                    "executions": count,
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
        )


def run_atheris(runs: int) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris: not installed (pip install atheris), skipped")
        return
    print("\natheris (coverage-guided), seed corpus: tests/fixtures/plans")
    for target in TARGETS:
        done = subprocess.run(
            [sys.executable, __file__, "--atheris-child", target, str(runs)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        figures = [line for line in done.stdout.splitlines() if line.startswith("{")]
        result = json.loads(figures[-1]) if figures else {"target": target, "executions": "?"}
        crashed = "Uncaught Python exception" in done.stderr or done.returncode not in (0,)
        unexpected = 1 if crashed else 0
        print(
            f"  {target:6} executions {result['executions']}, "
            f"{result.get('seconds', '?')} s, unexpected exceptions {unexpected}"
        )
        if crashed:
            print("    " + "\n    ".join(done.stderr.strip().splitlines()[-15:]))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full size (ENTRA_BULK_FULL=1)")
    parser.add_argument(
        "--atheris",
        type=int,
        metavar="N",
        default=0,
        help="also run atheris for N executions per target",
    )
    parser.add_argument("--only", metavar="EXPR", help="pytest -k expression: some campaigns")
    parser.add_argument(
        "--atheris-child", nargs=2, metavar=("TARGET", "RUNS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.atheris_child:
        atheris_child(args.atheris_child[0], int(args.atheris_child[1]))
        return 0
    print(f"Reliability campaigns ({'full' if args.full else 'CI'} size)")
    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d')}\n")
    code = run_campaigns(args.full, ["-k", args.only] if args.only else [])
    if args.atheris:
        run_atheris(args.atheris)
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())

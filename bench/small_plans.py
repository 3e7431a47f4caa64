"""Small plans: how long 200 users × 3 actions take, against a one-request-at-a-time script.

    .venv/bin/python bench/small_plans.py [--targets 200] [--tenant-users 3000]
        [--latency-ms 50:150] [--repeat 3] [--cache DIR] [--keep]

The plan (`reset_password`, `disable_account`, `revoke_sessions` for `--targets` enabled
cloud-only members) runs against an emulator in another process at real scale: throttling
on with the published quotas, time scale 1, request latency `--latency-ms`, the emulator's
default consistency delay (1.5 s before a revocation shows in reads).

- entra-bulk: `plan` + `apply` (canary, batches, verification) with `python -m runner`, wall
  time of each process; `approve` (a person's step) is timed but left out of the total.
- baseline: the same changes made one request at a time, as a peer script would: a token
  from msal, then per user `GET /users/{upn}`, `PATCH` passwordProfile, `PATCH`
  accountEnabled, `POST revokeSignInSessions` with one keep-alive httpx client, and a final
  read-back per user (`GET /users/{id}?$select=...`), all in sequence. It prints its time with
  and without the read-back (a peer script rarely reads back).

Each side gets a fresh copy of the tenant and a fresh emulator; `--repeat` runs each that many
times and prints the median with the range. Prints the ratio baseline ÷ entra-bulk. Exits 0
with any figure, 1 when it could not run.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import string
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msal
import requests
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
    run_report,
    scratch,
    write_plan,
)

ACTIONS = ("reset_password", "disable_account", "revoke_sessions")


def run_entra_bulk(
    args: argparse.Namespace, cached: Path, folder: Path, options: EmulatorOptions
) -> dict[str, Any]:
    """plan + approve + apply with the CLI; wall times."""
    state = copy_tenant(cached, folder / "tenant")
    upns = eligible_upns(state, args.targets)
    with EmulatorProcess(state, options, logs=folder / "logs") as emulator:
        work = Workspace(folder / "work", emulator.connection_file)
        source, _ = write_plan(work.folder, "small", upns, ACTIONS)
        frozen = work.folder / "small.plan.json"
        plan = work.cli("--tenant", "emulator", "plan", str(source), "-o", str(frozen)).check()
        approve = work.cli("approve", str(frozen), "--approver", "bench-approver").check()
        apply = work.cli(
            "--tenant", "emulator", "apply", str(frozen), "--yes", "--confirm-count", str(len(upns))
        ).check(0, 1)
        writes = len(emulator.ledger())
    (run_dir,) = work.run_dirs()
    counts = {k: v for k, v in run_report(run_dir)["counts"].items() if v}
    return {
        "plan_s": plan.wall_s,
        "approve_s": approve.wall_s,
        "apply_s": apply.wall_s,
        "total_s": plan.wall_s + apply.wall_s,
        "writes": writes,
        "counts": counts,
    }


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16)) + "aA1!"


def run_baseline(
    args: argparse.Namespace, cached: Path, folder: Path, options: EmulatorOptions
) -> dict[str, Any]:
    """The naive sequential loop; wall time with and without the read-back."""
    state = copy_tenant(cached, folder / "tenant")
    upns = eligible_upns(state, args.targets)
    with EmulatorProcess(state, options, logs=folder / "logs") as emulator:
        info = emulator.info
        app = info["apps"][0]
        started = time.perf_counter()
        session = requests.Session()
        session.verify = info["ca_file"]
        session.trust_env = False
        confidential = msal.ConfidentialClientApplication(
            app["client_id"],
            client_credential=app["client_secret"],
            authority=info["authority"],
            instance_discovery=False,
            http_client=session,
        )
        token = confidential.acquire_token_for_client(
            scopes=["https://graph.microsoft.com/.default"]
        )
        if "access_token" not in token:
            msg = f"no token: {token.get('error_description')}"
            raise BenchError(msg)
        failures = 0
        read_back_s = 0.0
        with httpx.Client(
            base_url=f"{info['graph_url']}/v1.0",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=60,
            trust_env=False,
        ) as graph:
            for upn in upns:
                user = graph.get(f"/users/{upn}", params={"$select": "id"})
                if user.status_code != 200:
                    failures += 1
                    continue
                user_id = user.json()["id"]
                profile = {"password": _password(), "forceChangePasswordNextSignIn": True}
                answers = [
                    graph.patch(f"/users/{user_id}", json={"passwordProfile": profile}),
                    graph.patch(f"/users/{user_id}", json={"accountEnabled": False}),
                    graph.post(f"/users/{user_id}/revokeSignInSessions", json={}),
                ]
                failures += sum(1 for a in answers if a.status_code >= 300)
                began = time.perf_counter()
                graph.get(
                    f"/users/{user_id}",
                    params={"$select": "accountEnabled,signInSessionsValidFromDateTime"},
                )
                read_back_s += time.perf_counter() - began
        total = time.perf_counter() - started
        writes = len(emulator.ledger())
    return {
        "total_s": total,
        "without_read_back_s": total - read_back_s,
        "writes": writes,
        "failures": failures,
    }


def _median(values: list[float]) -> str:
    if len(values) == 1:
        return fmt_s(values[0])
    return f"{fmt_s(statistics.median(values))} ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--tenant-users", type=int, default=3000)
    parser.add_argument("--latency-ms", default="50:150")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    print(f"small plans, {now_utc()}: {machine()}; load {load_average()}")
    options = EmulatorOptions(
        users=args.tenant_users, time_scale=1.0, latency_ms=args.latency_ms, throttle=True
    )
    try:
        cached, generation_s = cached_tenant(args.cache, args.tenant_users)
        print(
            f"tenant of {args.tenant_users:,} users (generated in {generation_s:.1f} s, cached); "
            f"plan: {args.targets:,} users x {', '.join(ACTIONS)}"
        )
        print(f"emulator in its own process: {options.describe()}")
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        with scratch("bench-small-", keep=args.keep) as root:
            for run in range(args.repeat):
                ours.append(run_entra_bulk(args, cached, root / f"ours-{run}", options))
                theirs.append(run_baseline(args, cached, root / f"baseline-{run}", options))
                print(
                    f"  run {run + 1}: entra-bulk {fmt_s(ours[-1]['total_s'])} "
                    f"({ours[-1]['writes']} writes, {ours[-1]['counts']}); baseline "
                    f"{fmt_s(theirs[-1]['total_s'])} ({theirs[-1]['writes']} writes, "
                    f"{theirs[-1]['failures']} failed requests)",
                    flush=True,
                )
    except (BenchError, httpx.HTTPError, OSError) as exc:
        print(f"small_plans: could not run: {exc}", file=sys.stderr)
        return 1
    total = [r["total_s"] for r in ours]
    base = [r["total_s"] for r in theirs]
    base_no_read = [r["without_read_back_s"] for r in theirs]
    print(f"\nentra-bulk plan + apply (+ verify): {_median(total)}")
    print(f"  plan     {_median([r['plan_s'] for r in ours])}")
    print(f"  apply    {_median([r['apply_s'] for r in ours])} (canary, batches, verification)")
    print(f"  approve  {_median([r['approve_s'] for r in ours])} (not in the total)")
    print(f"baseline, one request at a time: {_median(base)}")
    print(f"  without the read-back:         {_median(base_no_read)}")
    ratio = statistics.median(base) / statistics.median(total)
    ratio_no_read = statistics.median(base_no_read) / statistics.median(total)
    print(
        f"ratio baseline ÷ entra-bulk: {ratio:.1f}x "
        f"({ratio_no_read:.1f}x against the baseline without its read-back)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

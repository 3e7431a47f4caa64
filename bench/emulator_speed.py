"""How many `$batch` items per second the emulated tenant serves (throttling and latency off).

    .venv/bin/python bench/emulator_speed.py [--users 100000 3000] [--threads 2 4]
        [--batches 150] [--repeat 3] [--cache DIR] [--in-process]

For each tenant size it measures three scenarios of 20-item `$batch` requests, each item a
different user:

    reads    GET  /users/{id}?$select=id,displayName,accountEnabled
    writes   POST /users/{id}/revokeSignInSessions  (body {})
    methods  GET  /users/{id}/authentication/methods

sent by 2 and by 4 client threads at once (each with its own keep-alive httpx client), as
the runner will; each measure is run `--repeat` times (150 batches, 3,000 items each) and the
median printed with the range. The tenant is generated once into a cache folder (the time it took is
printed and kept; a change to the generator or the schema makes a new one) and copied for
each run, so writes never accumulate across runs. The emulator runs in a child process, as
`entra-bulk emulator serve` would; `--in-process` runs it in this process instead, as
`--tenant emulator` will, sharing one interpreter lock with the clients.

Prints items per second and the ratio to the 1,000 items/s target (issue 2). Exits 0 with
any figure; 1 only when it could not run (no tenant, no server, an item not 2xx).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import machine

TARGET = 1000.0  # batch items per second, with throttling and latency off
SEED = 1
BATCH = 20
JSON = {"Content-Type": "application/json"}

Item = Callable[[str, str], dict[str, Any]]


def _read(item_id: str, user_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "method": "GET",
        "url": f"/users/{user_id}?$select=id,displayName,accountEnabled",
    }


def _write(item_id: str, user_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{user_id}/revokeSignInSessions",
        "headers": JSON,
        "body": {},
    }


def _methods(item_id: str, user_id: str) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": f"/users/{user_id}/authentication/methods"}


SCENARIOS: dict[str, tuple[Item, int]] = {
    "reads": (_read, 200),
    "writes": (_write, 200),
    "methods": (_methods, 200),
}


class BenchError(Exception):
    """The benchmark could not run (the message says why)."""


@dataclass(frozen=True, slots=True)
class Served:
    """Where the emulator listens and the token to call it with."""

    graph_url: str
    admin_url: str
    token: str


# -- the tenant: generated once, copied per run ----------------------------------------------


def cached_tenant(cache: Path, users: int) -> tuple[Path, float, str]:
    """The cached state folder of a tenant of `users` (generated now if missing), the seconds
    its generation took and when it was generated."""
    from runner.emulator import Emulator, EmulatorConfig

    folder = cache / f"tenant-{users}-seed-{SEED}-{_generator_digest()}"
    stamp = folder / "generation.json"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        with Emulator(EmulatorConfig(state_dir=folder, users=users, seed=SEED, throttle=False)):
            pass
        seconds = time.perf_counter() - started
        stamp.write_text(
            json.dumps({"users": users, "seconds": round(seconds, 1), "at": _now()}) + "\n"
        )
    record = json.loads(stamp.read_text())
    return folder, float(record["seconds"]), str(record["at"])


def _generator_digest() -> str:
    """A short digest of the tenant generator and schema: a changed generator is a new cache."""
    import runner.emulator.seed
    import runner.emulator.store

    digest = hashlib.sha256()
    for module in (runner.emulator.seed, runner.emulator.store):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- the server: a child process (or this one) -------------------------------------------------


def _serve(state: str, users: int, ready: Any, stop: multiprocessing.synchronize.Event) -> None:
    """Child process: run the emulator until `stop` is set; report where it listens."""
    from runner.emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(state_dir=Path(state), users=users, seed=SEED, throttle=False)
    try:
        with Emulator(config) as emu:
            ready.put((emu.graph_url, emu.admin_url, emu.mint_app_token()))
            stop.wait()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits 1
        ready.put(("error", repr(exc), ""))


class Server:
    """The emulator under test, over a copy of the cached tenant."""

    def __init__(self, state: Path, users: int, *, in_process: bool) -> None:
        self.state = state
        self.users = users
        self.in_process = in_process
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop: multiprocessing.synchronize.Event | None = None
        self._emulator: Any = None

    def __enter__(self) -> Served:
        if self.in_process:
            from runner.emulator import Emulator, EmulatorConfig

            config = EmulatorConfig(
                state_dir=self.state, users=self.users, seed=SEED, throttle=False
            )
            self._emulator = Emulator(config)
            self._emulator.start()
            emu = self._emulator
            return Served(emu.graph_url, emu.admin_url, emu.mint_app_token())
        context = multiprocessing.get_context("spawn")
        ready = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(str(self.state), self.users, ready, self._stop), daemon=True
        )
        self._process.start()
        graph_url, admin_url, token = ready.get(timeout=600)
        if graph_url == "error":
            msg = f"the emulator did not start: {admin_url}"
            raise BenchError(msg)
        return Served(graph_url, admin_url, token)

    def __exit__(self, *_exc: object) -> None:
        if self._emulator is not None:
            self._emulator.stop()
        if self._process is not None and self._stop is not None:
            self._stop.set()
            self._process.join(timeout=30)


# -- measuring -------------------------------------------------------------------------------


def user_ids(served: Served, count: int) -> list[str]:
    """The first `count` user ids, paged from Graph (`$top=999`)."""
    ids: list[str] = []
    url: str | None = f"{served.graph_url}/v1.0/users?$select=id&$top=999"
    with httpx.Client(headers={"Authorization": f"Bearer {served.token}"}, timeout=60) as graph:
        while url is not None and len(ids) < count:
            page = graph.get(url)
            if page.status_code != 200:
                msg = f"listing users: {page.status_code} {page.text[:200]}"
                raise BenchError(msg)
            body = page.json()
            ids += [str(user["id"]) for user in body["value"]]
            url = body.get("@odata.nextLink")
    if len(ids) < count:
        msg = f"the tenant has {len(ids)} users; {count} are needed"
        raise BenchError(msg)
    return ids[:count]


def run_scenario(
    served: Served, users: list[str], make: Item, expected: int, threads: int
) -> float:
    """Send `len(users) / 20` batches from `threads` clients at once; items per second."""
    batches = [
        [make(str(n), user) for n, user in enumerate(users[start : start + BATCH])]
        for start in range(0, len(users) - BATCH + 1, BATCH)
    ]
    shares = [batches[index::threads] for index in range(threads)]
    barrier = threading.Barrier(threads + 1)
    failures: list[str] = []

    def worker(share: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(
            base_url=f"{served.graph_url}/v1.0",
            headers={"Authorization": f"Bearer {served.token}"},
            timeout=60,
        ) as graph:
            graph.get("/organization")  # open the keep-alive connection before the clock
            barrier.wait()
            for requests in share:
                response = graph.post("/$batch", json={"requests": requests})
                if response.status_code != 200:
                    failures.append(f"batch {response.status_code}")
                    continue
                statuses = {item["status"] for item in response.json()["responses"]}
                if statuses != {expected}:
                    failures.append(f"item statuses {sorted(statuses)}")

    pool = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        msg = f"{len(failures)} batches failed, first: {failures[0]}"
        raise BenchError(msg)
    return sum(len(batch) for batch in batches) / elapsed


def bench_tenant(args: argparse.Namespace, users: int, results: list[dict[str, Any]]) -> None:
    """Every scenario and thread count on one tenant size."""
    cached, generation_s, generated_at = cached_tenant(args.cache, users)
    print(f"\ntenant of {users:,} users: generated in {generation_s:.1f} s ({generated_at})")
    with tempfile.TemporaryDirectory(prefix="emulator-speed-") as scratch:
        state = Path(scratch) / "tenant"
        started = time.perf_counter()
        shutil.copytree(cached, state)
        print(f"  copied the cached tenant in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        with Server(state, users, in_process=args.in_process) as served:
            print(f"  emulator up in {time.perf_counter() - started:.1f} s")
            needed = args.batches * BATCH
            rounds = len(args.threads) * args.repeat
            pool = user_ids(served, min(users, needed * rounds))
            for name, (make, expected) in SCENARIOS.items():
                for thread_index, threads in enumerate(args.threads):
                    rates = []
                    for repeat in range(args.repeat):
                        # A fresh slice of users per round (while the tenant has enough).
                        round_index = thread_index * args.repeat + repeat
                        offset = (round_index * needed) % max(len(pool) - needed + 1, 1)
                        chosen = pool[offset : offset + needed]
                        rates.append(run_scenario(served, chosen, make, expected, threads))
                    rate = statistics.median(rates)
                    results.append(
                        {"users": users, "scenario": name, "threads": threads, "rate": rate}
                    )
                    print(
                        f"  {name:<8} {threads} threads: {rate:7.0f} items/s "
                        f"({rate / TARGET:.2f} x target; runs {min(rates):.0f}-{max(rates):.0f})"
                    )
    results.append({"users": users, "generation_s": generation_s})


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 3_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--batches", type=int, default=150, help="batches per scenario and thread count"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measure; the median is printed"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "entra-bulk"
        / "bench",
        help="folder of the generated tenants, reused across runs",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the emulator in this process"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    where = "in this process" if args.in_process else "in a child process"
    print(f"emulator speed, {_now()}: {machine()}")
    print(f"throttling off, no latency, emulator {where}, target {TARGET:,.0f} items/s")
    results: list[dict[str, Any]] = []
    try:
        for users in args.users:
            bench_tenant(args, users, results)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        print(f"emulator_speed: could not run: {exc}", file=sys.stderr)
        return 1
    rates = [row["rate"] for row in results if "rate" in row]
    print(
        f"\nslowest {min(rates):.0f} items/s ({min(rates) / TARGET:.2f} x target), "
        f"fastest {max(rates):.0f} items/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

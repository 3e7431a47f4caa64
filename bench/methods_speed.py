"""How fast the emulated tenant serves authentication-methods calls (throttling off).

    .venv/bin/python bench/methods_speed.py [--users 100000] [--state DIR] [--rounds 200]

Prints the time of a methods list, of a 20-item `$batch` of method lists, and of a 20-item
`$batch` of method deletes (one method per user), as requests (or items) per second. The
issue asks for at least 1,000 batch items per second on 2 cores with throttling off.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from runner.emulator import Emulator, EmulatorConfig

DELETABLE = {
    "email": "emailMethods",
    "fido2": "fido2Methods",
    "windowsHelloForBusiness": "windowsHelloForBusinessMethods",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--state", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    state = args.state or Path(tempfile.mkdtemp()) / "tenant"
    started = time.perf_counter()
    config = EmulatorConfig(state_dir=state, users=args.users, throttle=False)
    with Emulator(config) as emu:
        print(f"tenant of {args.users} users ready in {time.perf_counter() - started:.1f} s")
        assert emu.store is not None
        users = [
            str(row["user_id"])
            for row in emu.store.query(
                "SELECT DISTINCT user_id FROM methods LIMIT ?", (args.rounds * 20,)
            )
        ]
        victims = emu.store.query(
            "SELECT user_id, id, kind FROM methods WHERE deleted_at IS NULL AND kind IN "
            "('email', 'fido2', 'windowsHelloForBusiness') "
            "GROUP BY user_id LIMIT ?",
            (args.rounds * 20,),
        )
        token = emu.mint_app_token()
        with httpx.Client(
            base_url=f"{emu.graph_url}/v1.0", headers={"Authorization": f"Bearer {token}"}
        ) as graph:
            graph.get(f"/users/{users[0]}/authentication/methods").raise_for_status()
            singles = []
            for user_id in users[: args.rounds]:
                t0 = time.perf_counter()
                graph.get(f"/users/{user_id}/authentication/methods").raise_for_status()
                singles.append(time.perf_counter() - t0)
            print(
                f"GET methods: median {statistics.median(singles) * 1000:.2f} ms, "
                f"{len(singles) / sum(singles):.0f} requests/s (one client)"
            )
            _batches(
                graph,
                "list",
                [
                    {"id": str(i), "method": "GET", "url": f"/users/{u}/authentication/methods"}
                    for i, u in enumerate(users)
                ],
            )
            _batches(
                graph,
                "delete",
                [
                    {
                        "id": str(i),
                        "method": "DELETE",
                        "url": f"/users/{row['user_id']}/authentication/"
                        f"{DELETABLE[row['kind']]}/{row['id']}",
                    }
                    for i, row in enumerate(victims)
                ],
            )


def _batches(graph: httpx.Client, label: str, items: list[dict[str, str]]) -> None:
    times = []
    count = 0
    for start in range(0, len(items) - 19, 20):
        chunk = [{**item, "id": str(n)} for n, item in enumerate(items[start : start + 20])]
        t0 = time.perf_counter()
        response = graph.post("/$batch", json={"requests": chunk})
        times.append(time.perf_counter() - t0)
        response.raise_for_status()
        statuses = {r["status"] for r in response.json()["responses"]}
        if not statuses <= {200, 204}:
            msg = f"{label}: unexpected item statuses {statuses}"
            raise SystemExit(msg)
        count += len(chunk)
    print(
        f"$batch of 20 {label}: median {statistics.median(times) * 1000:.1f} ms, "
        f"{count / sum(times):.0f} items/s over {len(times)} batches"
    )


if __name__ == "__main__":
    main()

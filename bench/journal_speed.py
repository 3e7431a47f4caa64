"""How fast the journal is at the sizes product-spec section 10 asks for.

    .venv/bin/python bench/journal_speed.py [--items 100000] [--commits 1000] [--dir DIR]

Prints: creating a journal of N items (one transaction); reopening it and finding the
orphaned intents (what a resume does first); reading every item; and commits per second
with synchronous=FULL, one intent per commit and 20 per commit (a `$batch`), beside a raw
write+fsync loop on the same disk and the same commits with synchronous=NORMAL, which tell
whether the disk really flushes. Graph's write ceiling is about 20 requests per second per
app, so the journal needs at least that many commits per second to stay out of the way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from runner.journal import Journal
from runner.runstate import Intent, ItemSpec, Outcome, RunHeader, StepStatus, TimeSource

NOW = dt.datetime.now(dt.UTC)


def _header() -> RunHeader:
    return RunHeader(
        plan_name="bench",
        ticket=None,
        digest="sha256:" + "0" * 64,
        tenant_id="t",
        emulated=True,
        author={},
        approvals=(),
        content={"targets": []},
        options={},
        created=NOW,
    )


def _specs(count: int) -> list[ItemSpec]:
    return [
        ItemSpec(
            target_index=i,
            object_id=str(uuid.UUID(int=i + 1)),
            upn=f"user{i}@contoso.example",
            display_name=f"User {i}",
            action="revoke_sessions",
            position=0,
            kind="change",
            summary="will revoke every session",
            repeatable=True,
        )
        for i in range(count)
    ]


def _intent(item_id: int) -> Intent:
    return Intent(
        item_id=item_id,
        step_key="revoke",
        intent_id=str(uuid.uuid4()),
        intent_time=NOW,
        time_source=TimeSource.LOCAL,
    )


def _fsync_loop(folder: Path, rounds: int) -> float:
    path = folder / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    started = time.perf_counter()
    for n in range(rounds):
        os.pwrite(fd, os.urandom(4096), (n % 64) * 4096)
        os.fsync(fd)
    elapsed = time.perf_counter() - started
    os.close(fd)
    path.unlink()
    return rounds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--orphans", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="journal-bench-"))
    run = base / "run"
    run.mkdir(mode=0o700, parents=True)

    specs = _specs(args.items)
    started = time.perf_counter()
    journal = Journal.create(run, _header(), specs)
    created = time.perf_counter() - started
    print(f"create {args.items:,} items (one transaction): {created:.2f} s")
    journal.acquire_lock(command="bench")

    ids = list(range(1, args.items + 1))
    random.Random(1).shuffle(ids)
    orphans, rest = ids[: args.orphans], ids[args.orphans :]
    for n in range(0, len(orphans), 20):
        journal.record_intents([_intent(i) for i in orphans[n : n + 20]])

    single = rest[: args.commits]
    started = time.perf_counter()
    for item_id in single:
        journal.record_intent(_intent(item_id))
    intent_rate = len(single) / (time.perf_counter() - started)
    started = time.perf_counter()
    for item_id in single:
        journal.record_outcome(
            Outcome(
                item_id=item_id,
                step_key="revoke",
                status=StepStatus.SUCCEEDED,
                http_status=204,
                finish_item=True,
            )
        )
    outcome_rate = len(single) / (time.perf_counter() - started)
    batched = rest[args.commits : args.commits * 21]
    started = time.perf_counter()
    for n in range(0, len(batched), 20):
        journal.record_intents([_intent(i) for i in batched[n : n + 20]])
    batch_rate = len(batched) / 20 / (time.perf_counter() - started)
    for n in range(0, len(batched), 20):
        journal.record_outcomes(
            [
                Outcome(
                    item_id=i,
                    step_key="revoke",
                    status=StepStatus.SUCCEEDED,
                    http_status=204,
                    finish_item=True,
                )
                for i in batched[n : n + 20]
            ]
        )
    print(
        f"synchronous=FULL: {intent_rate:,.0f} intent commits/s, {outcome_rate:,.0f} outcome "
        f"commits/s, {batch_rate:,.0f} commits/s of 20 intents ({batch_rate * 20:,.0f} items/s)"
    )
    journal.close()

    started = time.perf_counter()
    again = Journal.open(run)
    found = again.orphaned_intents()
    scanned = time.perf_counter() - started
    print(
        f"reopen + find {len(found):,} orphaned intents among {args.items:,} items: "
        f"{scanned * 1000:.1f} ms"
    )
    started = time.perf_counter()
    counts = again.counts()
    counted = time.perf_counter() - started
    started = time.perf_counter()
    total = sum(1 for _ in again.iter_items())
    read = time.perf_counter() - started
    print(f"counts per status: {counted * 1000:.1f} ms; read all {total:,} items: {read:.2f} s")
    assert sum(counts.values()) == args.items
    again.close()

    raw = _fsync_loop(run, args.commits)
    con = sqlite3.connect(run / "normal.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("CREATE TABLE t (x)")
    started = time.perf_counter()
    for n in range(args.commits):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?)", (n,))
        con.execute("COMMIT")
    normal = args.commits / (time.perf_counter() - started)
    con.close()
    print(
        f"same disk: raw 4 KiB write+fsync {raw:,.0f}/s; "
        f"synchronous=NORMAL (no fsync per commit) {normal:,.0f} commits/s"
    )
    print(f"journal kept in {run}")


if __name__ == "__main__":
    main()

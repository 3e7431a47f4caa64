"""`entra-bulk status RUN_DIR`: how a run stands, from its journal (reads only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from runner.cli import Console
from runner.commands._rundir import open_run
from runner.errors import ExitCode
from runner.journal import holder_alive
from runner.report_data import assess, count_text, crash_log
from runner.review import clean
from runner.runstate import Event, ItemStatus, stamp

DETAIL_WIDTH = 100


def describe_event(event: Event) -> str:
    """One timeline event as a short line of text."""
    detail = event.detail
    new = detail.get("new")
    if event.kind in {"lock_acquired", "lock_takeover"} and isinstance(new, Mapping):
        return f"{new.get('command')} pid {new.get('pid')} on host {new.get('host')}"
    text = ", ".join(f"{key}={value}" for key, value in detail.items() if key != "old")
    text = clean(text)
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


@click.command(name="status")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain text, or one JSON document for programs.",
)
@click.option(
    "--events",
    "last",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    metavar="N",
    help="How many of the last timeline events to show.",
)
@click.pass_context
def command(ctx: click.Context, run_dir: Path, fmt: str, last: int) -> int:
    """Show a run's plan, counts per status, lock holder, last events and outcome."""
    console: Console = ctx.obj
    with open_run(run_dir) as journal:
        header = journal.header()
        counts = {str(k): v for k, v in journal.counts().items()}
        unverified = sum(
            1 for i in journal.iter_items(status=ItemStatus.SUCCEEDED) if i.verified is False
        )
        events = journal.events()
        lock = journal.lock_holder()
    alive = None if lock is None else holder_alive(lock)
    outcome = assess(
        counts,
        unverified=unverified,
        events=events,
        run_dir=str(run_dir),
        lock=lock,
        lock_alive=alive,
        crash_log=crash_log((p.name for p in run_dir.iterdir()), events),
    )
    recent = events[-last:] if last else []
    if fmt == "json":
        document: dict[str, Any] = {
            "run": str(run_dir),
            "plan": header.plan_name,
            "ticket": header.ticket,
            "digest": header.digest,
            "tenant_id": header.tenant_id,
            "emulated": header.emulated,
            "started": stamp(header.created),
            "total": sum(counts.values()),
            "counts": {k: v for k, v in counts.items() if v},
            "not_verified": unverified,
            "lock": None
            if lock is None
            else {
                "lock_id": lock.lock_id,
                "pid": lock.pid,
                "host": lock.host,
                "since": stamp(lock.started),
                "command": lock.command,
                "alive": alive,
            },
            "outcome": outcome.as_json(),
            "events": [
                {"time": stamp(e.time), "kind": e.kind, "detail": dict(e.detail)} for e in recent
            ],
        }
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
        return int(ExitCode.SUCCESS)
    tenant = header.tenant_id + ("  EMULATED TENANT" if header.emulated else "")
    ticket = f" ({clean(header.ticket)})" if header.ticket else ""
    if lock is None:
        held = "none"
    else:
        state = {True: "running", False: "its process is gone", None: "on another host"}[alive]
        held = f"{lock.command!r}, {lock.describe()}: {state}"
    code = outcome.code_text
    lines = [
        f"run        {run_dir}",
        f"plan       {clean(header.plan_name)}{ticket}",
        f"tenant     {tenant}",
        f"digest     {header.digest}",
        f"started    {stamp(header.created)[:19]}Z",
        f"items      {sum(counts.values())}: {count_text(counts)}"
        + (f"; {unverified} not verified" if unverified else ""),
        f"lock       {held}",
        f"outcome    {outcome.state} ({code}): {clean(outcome.meaning)}",
    ]
    lines += [f"next       {step}" for step in outcome.next_steps]
    if recent:
        lines.append(f"events     last {len(recent)} of {len(events)}")
        width = max(len(e.kind) for e in recent)
        lines += [
            f"  {stamp(e.time)[:19]}Z  {e.kind.ljust(width)}  {describe_event(e)}".rstrip()
            for e in recent
        ]
    for line in lines:
        console.out(line)
    return int(ExitCode.SUCCESS)

"""`entra-bulk runs [--root DIR]`: the runs under a folder, from their journals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click

from runner.cli import Console
from runner.errors import ExitCode
from runner.report_data import count_text
from runner.review import clean
from runner.rundir import RUNS_DIR, RunSummary, list_runs
from runner.runstate import ItemStatus, stamp

HEADINGS = ("RUN", "PLAN", "STARTED (UTC)", "ITEMS", "STATE", "OUTCOMES")


def state(run: RunSummary) -> str:
    """`running`, `stale lock (resume)`, `unfinished: N items (resume)`, `N unknown (resume)`
    or `finished` (`unreadable` when the journal cannot be read)."""
    if run.error is not None:
        return "unreadable"
    if run.lock is not None:
        return {True: "running", False: "stale lock (resume)", None: "locked elsewhere"}[
            run.lock_alive
        ]
    unfinished = run.counts.get(ItemStatus.PLANNED, 0) + run.counts.get(ItemStatus.INTENT, 0)
    if unfinished:
        return f"unfinished: {unfinished} items (resume)"
    unknown = run.counts.get(ItemStatus.UNKNOWN, 0)
    return f"{unknown} unknown (resume)" if unknown else "finished"


def cells(run: RunSummary) -> tuple[str, ...]:
    """One row of the table."""
    started = "-" if run.started is None else stamp(run.started)[:19].replace("T", " ")
    counts = {str(k): v for k, v in run.counts.items()}
    outcomes = clean(run.error) if run.error else count_text(counts)
    return (
        run.path.name,
        clean(run.plan_name or "-"),
        started,
        str(run.total),
        state(run),
        outcomes,
    )


def _plain(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(r[:-1], widths, strict=True))
        + "  "
        + r[-1]
        for r in rows
    ]


def _rich(rows: list[tuple[str, ...]], *, color: bool) -> str:
    import io

    from rich import box
    from rich.console import Console as RichConsole
    from rich.table import Table

    buffer = io.StringIO()
    out = RichConsole(
        file=buffer,
        width=shutil.get_terminal_size().columns,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for heading in HEADINGS:
        table.add_column(heading, overflow="fold")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    return buffer.getvalue().rstrip("\n")


@click.command(name="runs")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(RUNS_DIR),
    show_default=True,
    help="The folder holding the run folders.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table, or one JSON document for programs.",
)
@click.pass_context
def command(ctx: click.Context, root: Path, fmt: str) -> int:
    """List the runs under a folder: plan, start, counts, lock, state."""
    console: Console = ctx.obj
    runs = list_runs(root)
    if fmt == "json":
        document: list[dict[str, Any]] = [
            {
                "run": str(run.path),
                "plan": run.plan_name,
                "started": None if run.started is None else stamp(run.started),
                "total": run.total,
                "counts": {str(k): v for k, v in run.counts.items() if v},
                "state": state(run),
                "lock": None if run.lock is None else run.lock.describe(),
                "error": run.error,
            }
            for run in runs
        ]
        console.out(json.dumps(document, indent=2, ensure_ascii=False))
        return int(ExitCode.SUCCESS)
    if not runs:
        console.info(f"No runs in {root} (apply makes one per run; --root names another folder)")
        return int(ExitCode.SUCCESS)
    rows = [HEADINGS, *(cells(run) for run in runs)]
    if console.is_terminal:
        console.out(_rich(rows, color=console.color))
    else:
        for line in _plain(rows):
            console.out(line.rstrip())
    return int(ExitCode.SUCCESS)

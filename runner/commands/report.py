"""`entra-bulk report RUN_DIR [--format csv|json|html|xlsx]`: rebuild a run's reports."""

from __future__ import annotations

from pathlib import Path

import click

from runner import report
from runner.cli import Console
from runner.commands._rundir import open_run
from runner.errors import ExitCode
from runner.journal import holder_alive


@click.command(name="report")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "formats",
    type=click.Choice(report.FORMATS),
    multiple=True,
    help="A report to build (repeatable) [default: csv, json and html]. failed.csv is rebuilt "
    "every time (its header alone when nothing failed); failed.yaml, unknown.csv and "
    "manual-steps.md when they have something to list (stale ones are removed).",
)
@click.pass_context
def command(ctx: click.Context, run_dir: Path, formats: tuple[str, ...]) -> int:
    """(Re)build a run's reports from its journal alone; prints the files written."""
    console: Console = ctx.obj
    with open_run(run_dir) as journal:
        holder = journal.lock_holder()
        if holder is not None and holder_alive(holder) is not False:
            console.warn(
                f"{holder.command!r} still holds the run ({holder.describe()}): "
                "the reports show it so far"
            )
        written = report.write_all(run_dir, journal, formats=formats or None)
    console.info(f"Rebuilt from {run_dir}/journal.sqlite:")
    for path in written:
        console.out(str(path))
    return int(ExitCode.SUCCESS)

"""`entra-bulk validate PLAN...`: check plan files offline and print every problem at once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from runner import validate
from runner.commands._options import csv_options, csv_settings
from runner.errors import ExitCode

if TYPE_CHECKING:
    from runner.cli import Console


@click.command("validate")
@click.argument("plans", nargs=-1, required=True, metavar="PLAN...")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One problem per line, or a JSON document for scripts.",
)
@csv_options
@click.pass_context
def command(
    ctx: click.Context,
    /,
    plans: tuple[str, ...],
    output_format: str,
    **csv: Any,
) -> int:
    """Check plan files (YAML or CSV) without touching the tenant.

    Prints every problem of every file as PATH:LINE:COL: POINTER: message (CSV files:
    PATH:LINE: column NAME: message). Exit 0 when all are valid (warnings allowed), 2 if not.
    """
    console: Console = ctx.obj
    dialect, settings = csv_settings(plans, csv, verb="validate")
    results = [validate.load(path, dialect=dialect, settings=settings) for path in plans]
    if output_format == "json":
        console.out(json.dumps(validate.render_json(results), indent=2, ensure_ascii=False))
    else:
        for line in validate.render_text(results):
            console.out(line)
        for result in results:
            console.info(validate.summary(result))
    return int(ExitCode.SUCCESS if all(r.ok for r in results) else ExitCode.INVALID_INPUT)

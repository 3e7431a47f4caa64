"""`entra-bulk validate PLAN...`: check plan files offline and print every problem at once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from runner import validate
from runner.errors import ExitCode, InputError
from runner.planfile import CsvDialect, PlanForm, form_of

if TYPE_CHECKING:
    from runner.cli import Console

_DELIMITERS = {",": ",", "tab": "\t", ";": ";"}


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
@click.option("--encoding", metavar="ENC", help="Encoding of CSV files without a BOM (cp1252...).")
@click.option(
    "--delimiter",
    type=click.Choice(sorted(_DELIMITERS)),
    help="Column separator of CSV files (default: ',', or tab for UTF-16 files).",
)
@click.option("--actions", metavar="A,B", help="A CSV plan's actions, comma-separated, in order.")
@click.option("--name", metavar="NAME", help="A CSV plan's name (default: the file's name).")
@click.option("--ticket", metavar="TICKET", help="A CSV plan's ticket.")
@click.pass_context
def command(
    ctx: click.Context,
    plans: tuple[str, ...],
    output_format: str,
    encoding: str | None,
    delimiter: str | None,
    actions: str | None,
    name: str | None,
    ticket: str | None,
) -> int:
    """Check plan files (YAML or CSV) without touching the tenant.

    Prints every problem of every file as PATH:LINE:COL: POINTER: message (CSV files:
    PATH:LINE: column NAME: message). Exit 0 when all are valid (warnings allowed), 2 if not.
    """
    console: Console = ctx.obj
    csv_options = {"--actions": actions, "--name": name, "--ticket": ticket}
    given = [option for option, value in csv_options.items() if value is not None]
    if given and not any(form_of(path) is PlanForm.CSV for path in plans):
        message = f"{', '.join(given)} set a CSV plan's settings; a YAML plan sets its own"
        raise InputError(message, hint="put them in the YAML plan, or validate a CSV file")
    settings = validate.CsvPlanSettings(
        actions=None if actions is None else _split(actions),
        name=name,
        ticket=ticket,
    )
    dialect = CsvDialect(
        encoding=encoding,
        delimiter=None if delimiter is None else _DELIMITERS[delimiter],
    )
    results = [validate.load(path, dialect=dialect, settings=settings) for path in plans]
    if output_format == "json":
        console.out(json.dumps(validate.render_json(results), indent=2, ensure_ascii=False))
    else:
        for line in validate.render_text(results):
            console.out(line)
        for result in results:
            console.info(validate.summary(result))
    return int(ExitCode.SUCCESS if all(r.ok for r in results) else ExitCode.INVALID_INPUT)


def _split(actions: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in actions.split(",") if item.strip())

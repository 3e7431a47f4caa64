"""Options and steps shared by several commands (plan files, tenant, HTTP tracing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner import validate
from runner.config import Settings, resolve
from runner.errors import InputError
from runner.plan import Plan
from runner.planfile import CsvDialect, PlanForm, form_of

if TYPE_CHECKING:
    from runner.cli import Console

DELIMITERS = {",": ",", "tab": "\t", ";": ";"}
F = TypeVar("F", bound=Callable[..., Any])


def csv_options(function: F) -> F:
    """`--encoding`, `--delimiter`, `--actions`, `--name`, `--ticket` for CSV plans."""
    for option in reversed(
        [
            click.option(
                "--encoding", metavar="ENC", help="Encoding of CSV files without a BOM (cp1252...)."
            ),
            click.option(
                "--delimiter",
                type=click.Choice(sorted(DELIMITERS)),
                help="Column separator of CSV files (default: ',', or tab for UTF-16 files).",
            ),
            click.option(
                "--actions", metavar="A,B", help="A CSV plan's actions, comma-separated, in order."
            ),
            click.option(
                "--name", metavar="NAME", help="A CSV plan's name (default: the file's name)."
            ),
            click.option("--ticket", metavar="TICKET", help="A CSV plan's ticket."),
        ]
    ):
        function = option(function)
    return function


def csv_settings(
    paths: tuple[str, ...] | list[str], csv: Mapping[str, Any], *, verb: str
) -> tuple[CsvDialect, validate.CsvPlanSettings]:
    """The dialect and plan-level settings the CSV options give (checked for sense)."""
    given = {
        "--actions": csv.get("actions"),
        "--name": csv.get("name"),
        "--ticket": csv.get("ticket"),
    }
    named = [option for option, value in given.items() if value is not None]
    if named and not any(form_of(path) is PlanForm.CSV for path in paths):
        message = f"{', '.join(named)} set a CSV plan's settings; a YAML plan sets its own"
        raise InputError(message, hint=f"put them in the YAML plan, or {verb} a CSV file")
    actions = csv.get("actions")
    settings = validate.CsvPlanSettings(
        actions=None
        if actions is None
        else tuple(item.strip() for item in str(actions).split(",") if item.strip()),
        name=csv.get("name"),
        ticket=csv.get("ticket"),
    )
    delimiter = csv.get("delimiter")
    dialect = CsvDialect(
        encoding=csv.get("encoding"),
        delimiter=None if delimiter is None else DELIMITERS[str(delimiter)],
    )
    return dialect, settings


def load_plan(console: Console, path: Path, csv: Mapping[str, Any]) -> Plan:
    """A validated plan, or every problem printed and exit 2 (nothing sent anywhere)."""
    dialect, settings = csv_settings([str(path)], csv, verb="plan")
    result = validate.load(str(path), dialect=dialect, settings=settings)
    for line in validate.render_text([result]):
        console.stderr.write(line + "\n")
    if result.plan is None or not result.ok:
        msg = f"{path} is not a valid plan: {validate.summary(result)}"
        raise InputError(
            msg, hint=f"entra-bulk validate {path} lists the problems; nothing was sent"
        )
    return result.plan


def tenant_settings(
    console: Console, *, for_tenant: str | None = None, emulated: bool = False
) -> Settings:
    """The tenant the command acts on (`--tenant`, `--config`, environment; for a frozen plan
    or a run, the tenant it was made for when nothing else says, see `config.resolve`)."""
    return resolve(
        tenant=console.tenant,
        config_path=console.config_path,
        for_tenant=for_tenant,
        emulated=emulated,
    )


def trace_hook(console: Console) -> Callable[[dict[str, Any]], None]:
    """`--trace-http`: one line per Graph request on stderr, never headers or bodies."""

    def trace(event: dict[str, Any]) -> None:
        if console.log_format == "json":
            console.stderr.write(json.dumps({"event": "http", **event}) + "\n")
            return
        status = event.get("status") or event.get("transport", "-")
        console.stderr.write(
            f"http {event['method']} {event['path']} -> {status} "
            f"{event['ms']} ms request-id={event.get('request_id') or '-'} "
            f"client-request-id={event['client_request_id']}\n"
        )

    return trace

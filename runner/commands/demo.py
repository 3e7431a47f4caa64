"""`entra-bulk demo`: one command, no set-up: the whole flow against an emulated tenant."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from runner import demo
from runner.cli import Console, cli


def _flags(console: Console) -> list[str]:
    """The global options of the demo's own command line, for each step it runs."""
    flags = ["-v"] * console.verbosity
    if console.quiet:
        flags.append("-q")
    if not console.color:
        flags.append("--no-color")
    if console.log_format != "text":
        flags += ["--log-format", console.log_format]
    return flags


@click.command(name="demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=demo.DEMO_DIR,
    show_default=True,
    help="Where the demo's plan and run folder go (kept afterwards).",
)
@click.option(
    "--example",
    type=click.Choice(demo.examples()),
    default=demo.DEFAULT_EXAMPLE,
    show_default=True,
    help="The example plan (from plans/) to take through the flow.",
)
@click.pass_context
def command(ctx: click.Context, folder: Path, example: str) -> int:
    """Try the whole flow in one command, with no set-up: an emulated tenant in a temporary
    folder, an example plan through validate, plan, approve, apply and report; ends with the
    path of report.html. Never touches a real tenant."""
    console: Console = ctx.obj
    if (console.tenant not in {None, "emulator"}) or console.config_path is not None:
        console.warn(
            "the demo always uses its own emulated tenant: --tenant and --config are ignored"
        )
    flags = _flags(console)

    def invoke(argv: Sequence[str]) -> int:
        step = Console(stdout=console.stdout, stderr=console.stderr)
        code = cli.main(
            args=[*flags, *argv], prog_name="entra-bulk", standalone_mode=False, obj=step
        )
        return int(code) if isinstance(code, int) else 0

    return demo.run(folder=folder, example=example, invoke=invoke, say=console.out).code

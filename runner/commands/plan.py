"""`entra-bulk plan PLAN [-o FILE]`: the dry-run diff, frozen as a hashed plan to approve."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import click

from runner import render
from runner.cli import Console
from runner.commands._options import csv_options, load_plan, tenant_settings, trace_hook
from runner.errors import ExitCode, InputError
from runner.frozen import write
from runner.graph.connect import connect
from runner.planner import make_plan
from runner.progress import ReadProgress


def default_output(name: str) -> Path:
    """`<plan name>.plan.json` in the working folder."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "plan"
    return Path(f"{safe}.plan.json")


def _signers_hash(setting: str | None, target: Path) -> str | None:
    """The sha256 of the allowed_signers file (relative to the frozen plan's folder)."""
    if not setting:
        return None
    path = Path(setting).expanduser()
    if not path.is_absolute():
        path = target.parent / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        # Fail closed: a plan that does not bind its signers would let whoever writes the file
        # later decide whose signature counts.
        message = f"safety.allowed_signers: cannot read {path} ({exc.strerror or exc})"
        raise InputError(
            message,
            hint="the path is relative to the frozen plan's folder (-o); create the file "
            "(ssh's allowed_signers format) before planning",
        ) from None
    return "sha256:" + hashlib.sha256(data).hexdigest()


@click.command(name="plan")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the frozen plan [default: ./<plan name>.plan.json].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="How to print the diff (markdown is for a pull-request comment).",
)
@click.option(
    "--trace-http", is_flag=True, help="Log each Graph request (method, path, status, ids, time)."
)
@csv_options
@click.pass_context
def command(
    ctx: click.Context,
    /,
    plan_file: Path,
    output: Path | None,
    fmt: str,
    trace_http: bool,
    **csv: Any,
) -> int:
    """Resolve the targets, read their state, apply the safety rails, print the diff and
    write the frozen plan that `approve` and `apply` take."""
    console: Console = ctx.obj
    plan = load_plan(console, plan_file, csv)
    target = output or default_output(plan.name)
    signers_hash = _signers_hash(plan.safety.allowed_signers, target)
    settings = tenant_settings(console)
    with connect(
        settings,
        prompt=console.info,
        interactive=console.is_terminal,
        trace=trace_hook(console) if trace_http else None,
    ) as connection:
        reads = ReadProgress(
            console, terminal=bool(getattr(console.stderr, "isatty", lambda: False)())
        )
        try:
            frozen = make_plan(
                plan,
                client=connection.client,
                tokens=connection.tokens,
                settings=connection.settings,
                now=dt.datetime.now(dt.UTC),
                source=plan_file,
                note=console.info,
                allowed_signers_sha256=signers_hash,
                on_read=reads,
            )
        finally:
            reads.close()
    write(frozen, target)
    render.show(console, frozen, fmt=fmt, path=str(target))
    console.info(f"Frozen plan written to {target}")
    console.info(f"Digest: {frozen.digest}")
    console.info(
        "Next: have it reviewed, then "
        f"`{console.command('approve', str(target), '--approver', 'NAME')}` and "
        f"`{console.command('apply', str(target), '--expect-digest', frozen.digest)}`"
    )
    return int(ExitCode.SUCCESS)

"""`entra-bulk show FILE`: render a frozen plan for review, with its digest and approvals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner import approval, frozen, render
from runner.approval import Reason
from runner.errors import ExitCode, RefusedError

if TYPE_CHECKING:
    from runner.cli import Console

# Refusals that make the plan itself unfit, whoever looks at it: show says so with exit 3.
_UNFIT = frozenset({Reason.FORMAT, Reason.MALFORMED, Reason.TAMPERED})


def clock() -> dt.datetime:
    """The time now (tests fix it, to assert exact text)."""
    return dt.datetime.now(dt.UTC)


@click.command("show")
@click.argument("plan_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(render.FORMATS),
    default="text",
    show_default=True,
    help="A table (text), the content and digest (json), or a pull-request comment (markdown).",
)
@click.pass_context
def command(ctx: click.Context, plan_file: Path, fmt: str) -> int:
    """Render a frozen plan for review and print its digest and approvals.

    Each approval is listed with whether it counts (digest, author, signature). Exit 3 when
    the digest does not match the content (the plan was edited after it was frozen).
    """
    console: Console = ctx.obj
    plan = frozen.read(plan_file)
    now = clock()
    recorded = approval.load(plan_file)
    verdict = approval.check(
        plan,
        recorded,
        expect_digest=None,
        now=now,
        tenant_id=None,
        verify_signature=approval.verifier(plan),
    )
    unfit = [r for r in verdict.refusals if r.reason in _UNFIT]
    if any(r.reason in {Reason.FORMAT, Reason.MALFORMED} for r in unfit):
        raise RefusedError(_message(plan_file, unfit))
    render.show(console, plan, fmt=fmt, approvals=verdict.approvals, now=now, path=str(plan_file))
    if unfit:
        raise RefusedError(_message(plan_file, unfit))
    for refusal in verdict.refusals:
        console.info(f"apply would refuse it now: {refusal.message}")
    return int(ExitCode.SUCCESS)


def _message(plan_file: Path, refusals: list[approval.Refusal]) -> str:
    if len(refusals) == 1:
        return f"{plan_file}: {refusals[0].message}"
    return f"{plan_file}:" + "".join(f"\n  - {r.message}" for r in refusals)

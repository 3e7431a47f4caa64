"""`entra-bulk approve FILE --approver NAME`: record an approval bound to the plan's digest."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner import approval, frozen, review, signature
from runner.errors import ExitCode, InputError, RefusedError

if TYPE_CHECKING:
    from runner.cli import Console


def clock() -> dt.datetime:
    """The time now (tests fix it, to assert exact text)."""
    return dt.datetime.now(dt.UTC)


@click.command("approve")
@click.argument("plan_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--approver",
    required=True,
    metavar="NAME",
    help="Who approves (with signatures: the principal in the plan's allowed_signers).",
)
@click.option("--comment", metavar="TEXT", help="Why, or what was checked; kept with the approval.")
@click.option(
    "--sign-with",
    "key",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="KEY",
    help="Sign the digest with this SSH key (a private key, or the .pub of a key in ssh-agent).",
)
@click.pass_context
def command(
    ctx: click.Context, plan_file: Path, approver: str, comment: str | None, key: Path | None
) -> int:
    """Approve a frozen plan: record who approved which digest, beside the plan.

    The approval goes to FILE.approvals.json and covers this digest only. The plan's author
    cannot approve it. Where the plan names safety.allowed_signers, approvals must be signed
    (--sign-with) by a key listed there for the approver; the signature is checked at once.
    """
    console: Console = ctx.obj
    plan = frozen.read(plan_file)
    name = approval.check_approver(approver)
    now = clock()
    unfit = approval.integrity(plan, now=now)
    if unfit:
        lines = "".join(f"\n  - {refusal.message}" for refusal in unfit)
        msg = f"{plan_file} cannot be approved; nothing was recorded:{lines}"
        raise RefusedError(msg)
    if approval.is_author(plan, name):
        author = review.author_text(plan.content.get("author"))
        msg = (
            f"{plan_file}: {name} is the plan's author ({author}): a plan must be approved by "
            "someone else; nothing was recorded"
        )
        raise RefusedError(msg)
    signers = approval.allowed_signers_path(plan)
    if signers is not None and key is None:
        msg = (
            f"{plan_file}: the plan requires signed approvals (safety.allowed_signers: "
            f"{approval.signers_setting(plan)}); nothing was recorded"
        )
        raise InputError(msg, hint="pass --sign-with KEY, a key listed there for the approver")
    signed = None
    if key is not None:
        interactive = console.is_terminal and sys.stdin.isatty()
        signed = signature.sign(plan.digest, key=key, interactive=interactive)
    record = approval.record(plan, approver=name, comment=comment, now=now, signature=signed)
    if signers is not None:
        problem = approval.ssh_verifier(signers)(record)
        if problem is not None:
            msg = f"{plan_file}: the signature does not count: {problem}; nothing was recorded"
            raise RefusedError(
                msg, hint=f"add the approver's public key to {signers}, or sign with that key"
            )
    everyone = approval.add(plan_file, record)
    assessed = approval.assess(plan, everyone, verify_signature=approval.verifier(plan))
    _report(console, plan, plan_file, record, assessed, key=key)
    return int(ExitCode.SUCCESS)


def _report(
    console: Console,
    plan: frozen.FrozenPlan,
    plan_file: Path,
    record: approval.Approval,
    assessed: tuple[approval.Assessment, ...],
    *,
    key: Path | None,
) -> None:
    console.out(f"approved   {record.digest} ({plan_file})")
    console.out(f"by         {record.approver} at {frozen.iso(record.time)}")
    if record.comment:
        console.out(f"comment    {review.clean(record.comment)}")
    if record.signature is not None:
        key_type, fingerprint = signature.signature_key(record.signature)
        checked = (
            f"verified against {approval.allowed_signers_path(plan)}"
            if approval.allowed_signers_path(plan) is not None
            else "not verified: the plan names no allowed_signers"
        )
        console.out(f"signature  {key_type} key {fingerprint} from {key} ({checked})")
    console.out(f"recorded   {approval.approvals_path(plan_file)}")
    mine = assessed[-1]
    if not mine.counts:
        console.warn(f"this approval does not count: {mine.reason}")
    valid = sum(1 for a in assessed if a.counts)
    required = int(plan.safety["required_approvals"])
    console.out(f"approvals  {valid} valid of {required} required")
    if valid >= required:
        tenant = plan.content.get("tenant")
        if console.tenant is None and isinstance(tenant, dict) and tenant.get("emulated"):
            # Planned against the emulated tenant: that is where it applies.
            console.tenant = "emulator"
        apply = console.command("apply", str(plan_file), "--expect-digest", record.digest)
        console.info(f"next: {apply}")
    else:
        console.info(
            f"next: {required - valid} more approval(s) by someone other than the author: "
            + console.command("approve", str(plan_file), "--approver", "NAME")
        )

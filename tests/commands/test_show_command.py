"""`entra-bulk show FILE`: the exact review of a small plan, its digest, approvals, exit 3."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from runner import approval, frozen, signature
from runner.actions.base import ChangeKind
from runner.cli import Console, main
from runner.commands import show
from runner.errors import ExitCode
from runner.frozen import FrozenPlan
from tests.approval_support import (
    NOW,
    allowed_signers,
    make_key,
    make_plan,
    signers_safety,
    target,
    write_plan,
)

MEGAN = target(
    "megan.bowen@contoso.com",
    "Megan Bowen",
    ("revoke_sessions", ChangeKind.CHANGE, "will revoke all sign-in sessions and refresh tokens"),
    ("disable_account", ChangeKind.NOOP, "no-op: already disabled"),
)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in `tmp_path` at the fixed clock `NOW`.

    The command reads the real clock; replacing its `clock` is the one way to assert the
    exact text of a plan that is not expired.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(show, "clock", lambda: NOW)
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(SystemExit) as exited:
        main(["show", *args], console=console)
    code = exited.value.code
    assert isinstance(code, int)
    return code, console.stdout.getvalue(), console.stderr.getvalue()  # type: ignore[attr-defined]


def _approved(folder: Path) -> FrozenPlan:
    plan = write_plan(folder, make_plan(targets=[MEGAN]))
    assert plan.path is not None
    approval.add(plan.path, approval.record(plan, approver="bob", comment="ok", now=NOW))
    approval.add(plan.path, approval.record(plan, approver="adele", comment=None, now=NOW))
    return plan


def test_show_text_of_a_small_plan_is_exact(folder: Path) -> None:
    """Header, digest, approvals with their standing, the target, counts; exit 0."""
    plan = _approved(folder)
    code, out, err = _run("breach.plan.json")
    assert (code, err) == (ExitCode.SUCCESS, "")
    assert out == (
        "plan       breach-2026-03-01\n"
        "ticket     INC-4821\n"
        "tenant     8f1c2b3a-0000-4000-8000-00000000a11c (global)\n"
        "author     user Adele.Vance@contoso.com, local user adele\n"
        "created    2026-03-01T12:00:00Z\n"
        "expires    2026-03-02T12:00:00Z\n"
        f"digest     {plan.digest}\n"
        "approvals  1 valid of 1 required\n"
        '  valid        bob at 2026-03-01T13:00:00Z (unsigned) — "ok"\n'
        "  not counted  adele at 2026-03-01T13:00:00Z (unsigned): the plan's author may not "
        "approve it\n"
        "\n"
        "megan.bowen@contoso.com  Megan Bowen\n"
        "  revoke_sessions  change  will revoke all sign-in sessions and refresh tokens\n"
        "  disable_account  no-op   no-op: already disabled\n"
        "\n"
        "summary    1 target (0 refused), 0 unresolved\n"
        "           change 1, no-op 1, manual 0, refused 0, not applicable 0\n"
    )


def test_show_markdown_of_a_small_plan_is_exact(folder: Path) -> None:
    """The pull-request comment, actions in the plan's order, and the apply command."""
    plan = _approved(folder)
    code, out, err = _run("breach.plan.json", "--format", "markdown")
    assert (code, err) == (ExitCode.SUCCESS, "")
    rows = "| user | display name | roles | kind | what will happen |\n|---|---|---|---|---|\n"
    assert out == (
        "## entra-bulk plan breach-2026-03-01\n"
        "\n"
        "| | |\n"
        "|---|---|\n"
        "| ticket | INC-4821 |\n"
        "| tenant | 8f1c2b3a-0000-4000-8000-00000000a11c (global) |\n"
        "| author | user Adele.Vance@contoso.com, local user adele |\n"
        "| created | 2026-03-01T12:00:00Z |\n"
        "| expires | 2026-03-02T12:00:00Z |\n"
        f"| digest | `{plan.digest}` |\n"
        "| approvals | 1 valid of 1 required |\n"
        "\n"
        "### Summary\n"
        "\n"
        "1 target (0 refused), 0 unresolved.\n"
        "\n"
        "| action | change | no-op | manual | refused | not applicable |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        "| `revoke_sessions` | 1 | 0 | 0 | 0 | 0 |\n"
        "| `disable_account` | 0 | 1 | 0 | 0 | 0 |\n"
        "| **total** | **1** | **1** | **0** | **0** | **0** |\n"
        "\n"
        "### Targets\n"
        "\n"
        "<details open>\n"
        "<summary><code>revoke_sessions</code>: 1 change</summary>\n"
        "\n" + rows + "| megan.bowen@contoso.com | Megan Bowen |  | change | will revoke all "
        "sign-in sessions and refresh tokens |\n"
        "\n"
        "</details>\n"
        "\n"
        "<details open>\n"
        "<summary><code>disable_account</code>: 1 no-op</summary>\n"
        "\n" + rows + "| megan.bowen@contoso.com | Megan Bowen |  | no-op | no-op: already "
        "disabled |\n"
        "\n"
        "</details>\n"
        "\n"
        "### Approvals\n"
        "\n"
        "| status | approval |\n"
        "|---|---|\n"
        '| valid | bob at 2026-03-01T13:00:00Z (unsigned) — "ok" |\n'
        "| not counted | adele at 2026-03-01T13:00:00Z (unsigned): the plan's author may not "
        "approve it |\n"
        "\n"
        "### Apply\n"
        "\n"
        "```sh\n"
        f"entra-bulk apply breach.plan.json --expect-digest {plan.digest}\n"
        "```\n"
    )


def test_show_json_is_the_content_digest_and_approvals(folder: Path) -> None:
    """Machine-readable: the content as frozen, its digest, each approval's standing."""
    plan = _approved(folder)
    code, out, _ = _run("breach.plan.json", "--format", "json")
    assert code == ExitCode.SUCCESS
    data = json.loads(out)
    assert data["content"] == plan.content
    assert (data["digest"], data["digest_matches"]) == (plan.digest, True)
    assert [(a["approver"], a["counts"]) for a in data["approvals"]] == [
        ("bob", True),
        ("adele", False),
    ]


def test_show_says_what_apply_would_refuse_on_stderr(folder: Path) -> None:
    """No approval yet: the review is printed, and stderr says what is missing; exit 0."""
    write_plan(folder, make_plan(targets=[MEGAN]))
    code, out, err = _run("breach.plan.json")
    assert code == ExitCode.SUCCESS
    assert "approvals  0 valid of 1 required\n" in out
    assert err == (
        "apply would refuse it now: 0 valid approvals of 1 required; next: someone other than "
        "the author runs entra-bulk approve breach.plan.json --approver NAME\n"
    )


def test_show_of_an_edited_plan_renders_it_and_exits_3(folder: Path) -> None:
    """The digest does not match the content: both digests shown, exit 3 with the reason."""
    plan = make_plan(targets=[MEGAN])
    edited = dataclasses.replace(plan, content={**plan.content, "warnings": ["slipped in"]})
    frozen.write(edited, folder / "breach.plan.json")
    actual = frozen.digest_of(edited.content)
    code, out, err = _run("breach.plan.json")
    assert code == ExitCode.REFUSED
    assert f"digest     {plan.digest} (DOES NOT MATCH the content, whose digest is {actual})\n" in (
        out
    )
    assert "warnings (1):\n  slipped in\n" in out
    assert err == (
        f"error: breach.plan.json: the digest does not match the content: the file says "
        f"{plan.digest}, the content's digest is {actual}; the plan was edited after it was "
        "frozen: re-plan with entra-bulk plan and have the new plan approved\n"
    )


def test_show_of_an_unsupported_format_prints_nothing_and_exits_3(folder: Path) -> None:
    """A plan from a newer entra-bulk is not rendered by guesswork."""
    content = {**make_plan().content, "format_version": 2}
    frozen.write(frozen.freeze(content, info={}), folder / "new.plan.json")
    code, out, err = _run("new.plan.json")
    assert (code, out) == (ExitCode.REFUSED, "")
    assert err == (
        "error: new.plan.json: format_version 2 is not supported (this entra-bulk reads 1): "
        "apply it with the entra-bulk that wrote it, or re-plan with this one\n"
    )


def test_show_of_a_file_that_is_not_a_plan_is_exit_2(folder: Path) -> None:
    """Not a frozen plan: invalid input, with the way forward."""
    (folder / "plan.yaml").write_text("{}")
    code, out, err = _run("plan.yaml")
    assert (code, out) == (ExitCode.INVALID_INPUT, "")
    assert err == (
        "error: plan.yaml: not a frozen plan (expected 'content' and 'digest'); make one with "
        "entra-bulk plan\n"
    )


def test_show_verifies_signed_approvals(folder: Path) -> None:
    """Signed approvals are listed as verified (listed key) or not counted (other key)."""
    bob = make_key(folder / "keys", "bob")
    eve = make_key(folder / "keys", "eve")
    allowed_signers(folder / "signers", [("bob@contoso.com", bob)])
    plan = write_plan(folder, make_plan(targets=[MEGAN], safety=signers_safety(folder / "signers")))
    assert plan.path is not None
    for name, key in (("bob@contoso.com", bob), ("eve@contoso.com", eve)):
        made = signature.sign(plan.digest, key=key.private)
        record = approval.record(plan, approver=name, comment=None, now=NOW, signature=made)
        approval.add(plan.path, record)
    bob_key, eve_key = (a.key_fingerprint for a in approval.load(plan.path))
    code, out, err = _run("breach.plan.json")
    assert (code, err) == (ExitCode.SUCCESS, "")
    lines = out.splitlines()
    assert lines[7:11] == [
        "signers    approvals must be signed by a key listed in signers",
        "approvals  1 valid of 1 required",
        f"  valid        bob@contoso.com at 2026-03-01T13:00:00Z (signature verified, {bob_key})",
        f"  not counted  eve@contoso.com at 2026-03-01T13:00:00Z (signature rejected, {eve_key}): "
        "the signature does not verify for principal eve@contoso.com in signers (Could not "
        "verify signature.)",
    ]

"""`entra-bulk approve FILE --approver NAME`: what is recorded, and every refusal."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from runner import approval, frozen
from runner.cli import Console, main
from runner.commands import approve
from runner.errors import ExitCode
from runner.frozen import FrozenPlan
from tests.approval_support import (
    NOW,
    TENANT,
    Key,
    allowed_signers,
    make_key,
    make_plan,
    signers_safety,
    write_plan,
)

APPROVALS = "breach.plan.json.approvals.json"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in `tmp_path` at the fixed clock `NOW` (the command's `clock` is replaced)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(approve, "clock", lambda: NOW)
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(SystemExit) as exited:
        main(["approve", "breach.plan.json", *args], console=console)
    code = exited.value.code
    assert isinstance(code, int)
    return code, console.stdout.getvalue(), console.stderr.getvalue()  # type: ignore[attr-defined]


def test_the_next_step_of_an_emulated_plan_names_the_emulated_tenant(folder: Path) -> None:
    """A plan made against the emulated tenant is applied with --tenant emulator: the hint says
    so, so that it works when copied."""
    plan = write_plan(folder, make_plan(emulated=True))
    code, _, err = _run("--approver", "bob")
    assert code == ExitCode.SUCCESS
    assert err == (
        f"next: entra-bulk --tenant emulator apply breach.plan.json --expect-digest {plan.digest}\n"
    )


def _recorded(folder: Path) -> list[dict[str, object]]:
    path = folder / APPROVALS
    return json.loads(path.read_text()) if path.exists() else []


def test_an_unsigned_approval_is_recorded_and_reported(folder: Path) -> None:
    """What was recorded, where, the count, and the apply command once enough."""
    plan = write_plan(folder, make_plan())
    code, out, err = _run("--approver", "bob", "--comment", "checked the targets")
    assert code == ExitCode.SUCCESS
    assert out == (
        f"approved   {plan.digest} (breach.plan.json)\n"
        "by         bob at 2026-03-01T13:00:00Z\n"
        "comment    checked the targets\n"
        f"recorded   {APPROVALS}\n"
        "approvals  1 valid of 1 required\n"
    )
    assert err == f"next: entra-bulk apply breach.plan.json --expect-digest {plan.digest}\n"
    assert _recorded(folder) == [
        {
            "approver": "bob",
            "time": "2026-03-01T13:00:00Z",
            "comment": "checked the targets",
            "digest": plan.digest,
        }
    ]


def test_approvals_accumulate_and_apply_accepts_them(folder: Path) -> None:
    """A second approver is added beside the first; `check` then lets the plan through."""
    plan = write_plan(folder, make_plan(safety={"required_approvals": 2}))
    code, _, err = _run("--approver", "bob")
    assert code == ExitCode.SUCCESS
    assert err == (
        "next: 1 more approval(s) by someone other than the author: entra-bulk approve "
        "breach.plan.json --approver NAME\n"
    )
    code, out, _ = _run("--approver", "carol")
    assert code == ExitCode.SUCCESS
    assert out.endswith("approvals  2 valid of 2 required\n")
    assert [a["approver"] for a in _recorded(folder)] == ["bob", "carol"]
    verdict = approval.check(
        plan,
        approval.load(folder / "breach.plan.json"),
        expect_digest=plan.digest,
        now=NOW,
        tenant_id=TENANT,
        verify_signature=approval.verifier(plan),
    )
    assert verdict.ok


def test_approving_twice_is_recorded_but_counts_once(folder: Path) -> None:
    """The same approver again: kept in the file, with a warning that it does not count."""
    write_plan(folder, make_plan(safety={"required_approvals": 2}))
    _run("--approver", "bob")
    code, out, err = _run("--approver", "Bob")
    assert code == ExitCode.SUCCESS
    assert out.endswith("approvals  1 valid of 2 required\n")
    assert err.startswith("warning: this approval does not count: Bob already approved this plan\n")
    assert len(_recorded(folder)) == 2


@pytest.mark.parametrize("name", ["ADELE.VANCE@contoso.com", "adele"])
def test_the_author_cannot_approve(folder: Path, name: str) -> None:
    """By UPN or local user, in any case: exit 3, the reason, nothing recorded."""
    write_plan(folder, make_plan())
    code, out, err = _run("--approver", name)
    assert (code, out) == (ExitCode.REFUSED, "")
    assert err == (
        f"error: breach.plan.json: {name} is the plan's author (user Adele.Vance@contoso.com, "
        "local user adele): a plan must be approved by someone else; nothing was recorded\n"
    )
    assert not (folder / APPROVALS).exists()


def test_an_edited_plan_cannot_be_approved(folder: Path) -> None:
    """The content no longer matches its digest: exit 3, nothing recorded."""
    plan = make_plan()
    edited = dataclasses.replace(plan, content={**plan.content, "warnings": ["slipped in"]})
    frozen.write(edited, folder / "breach.plan.json")
    actual = frozen.digest_of(edited.content)
    code, out, err = _run("--approver", "bob")
    assert (code, out) == (ExitCode.REFUSED, "")
    assert err == (
        "error: breach.plan.json cannot be approved; nothing was recorded:\n"
        f"  - the digest does not match the content: the file says {plan.digest}, the "
        f"content's digest is {actual}; the plan was edited after it was frozen: re-plan with "
        "entra-bulk plan and have the new plan approved\n"
    )
    assert not (folder / APPROVALS).exists()


def test_an_expired_plan_cannot_be_approved(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its expiry a plan is refused (exit 3): re-plan instead."""
    write_plan(folder, make_plan())
    monkeypatch.setattr(approve, "clock", lambda: NOW.replace(day=3))
    code, _, err = _run("--approver", "bob")
    assert code == ExitCode.REFUSED
    assert err == (
        "error: breach.plan.json cannot be approved; nothing was recorded:\n"
        "  - the plan expired at 2026-03-02T12:00:00Z (it is now 2026-03-03T13:00:00Z): re-plan "
        "with entra-bulk plan and have the new plan approved\n"
    )


def test_an_empty_approver_is_invalid_input(folder: Path) -> None:
    """`--approver ''`: exit 2."""
    write_plan(folder, make_plan())
    code, _, err = _run("--approver", " ")
    assert code == ExitCode.INVALID_INPUT
    assert err == (
        "error: --approver is empty: give the reviewer's name (with signatures, their principal)\n"
    )


# --- signatures ----------------------------------------------------------------------------


@pytest.fixture
def keys(folder: Path) -> dict[str, Key]:
    """bob's key listed for bob@contoso.com in `signers` beside the plan; eve's not listed."""
    made = {name: make_key(folder / "keys", name) for name in ("bob", "eve")}
    allowed_signers(folder / "signers", [("bob@contoso.com", made["bob"])])
    return made


def _signed_plan(folder: Path) -> FrozenPlan:
    return write_plan(folder, make_plan(safety=signers_safety(folder / "signers")))


def test_a_signed_approval_is_checked_at_once_and_recorded(
    folder: Path, keys: dict[str, Key]
) -> None:
    """--sign-with a listed key: verified against allowed_signers, recorded with the key."""
    plan = _signed_plan(folder)
    code, out, err = _run("--approver", "bob@contoso.com", "--sign-with", "keys/bob")
    assert code == ExitCode.SUCCESS, err
    (record,) = approval.load(folder / "breach.plan.json")
    assert record.signature is not None
    assert out == (
        f"approved   {plan.digest} (breach.plan.json)\n"
        "by         bob@contoso.com at 2026-03-01T13:00:00Z\n"
        f"signature  ssh-ed25519 key {record.key_fingerprint} from keys/bob (verified against "
        "signers)\n"
        f"recorded   {APPROVALS}\n"
        "approvals  1 valid of 1 required\n"
    )
    assert approval.verifier(plan)(record) is None


def test_a_signature_is_optional_without_allowed_signers(
    folder: Path, keys: dict[str, Key]
) -> None:
    """Signing a plan that names no allowed_signers: recorded, and said to be unverified."""
    write_plan(folder, make_plan())
    code, out, _ = _run("--approver", "eve", "--sign-with", "keys/eve")
    assert code == ExitCode.SUCCESS
    (record,) = approval.load(folder / "breach.plan.json")
    assert (
        f"signature  ssh-ed25519 key {record.key_fingerprint} from keys/eve (not verified: the "
        "plan names no allowed_signers)\n"
    ) in out


def test_a_plan_with_signers_needs_sign_with(folder: Path, keys: dict[str, Key]) -> None:
    """No --sign-with where signatures are required: exit 2, nothing recorded."""
    _signed_plan(folder)
    code, _, err = _run("--approver", "bob@contoso.com")
    assert code == ExitCode.INVALID_INPUT
    assert err == (
        "error: breach.plan.json: the plan requires signed approvals (safety.allowed_signers: "
        "signers); nothing was recorded\n"
        "hint: pass --sign-with KEY, a key listed there for the approver\n"
    )
    assert not (folder / APPROVALS).exists()


def test_a_key_not_listed_for_the_approver_is_refused(folder: Path, keys: dict[str, Key]) -> None:
    """eve's key used as bob: the immediate check fails, exit 3, nothing recorded."""
    _signed_plan(folder)
    code, out, err = _run("--approver", "bob@contoso.com", "--sign-with", "keys/eve")
    assert (code, out) == (ExitCode.REFUSED, "")
    assert err == (
        "error: breach.plan.json: the signature does not count: the signature does not verify "
        "for principal bob@contoso.com in signers (Could not verify signature.); nothing was "
        "recorded\n"
        "hint: add the approver's public key to signers, or sign with that key\n"
    )
    assert not (folder / APPROVALS).exists()


def test_a_locked_key_without_a_terminal_is_invalid_input(folder: Path) -> None:
    """A passphrase nobody can type here: exit 2 with the ssh-agent way forward."""
    write_plan(folder, make_plan())
    make_key(folder / "keys", "locked", passphrase="correct horse")
    code, _, err = _run("--approver", "bob", "--sign-with", "keys/locked")
    assert code == ExitCode.INVALID_INPUT
    assert err == (
        "error: keys/locked: the key's passphrase was not given or is wrong (Load key "
        '"keys/locked": incorrect passphrase supplied to decrypt private key): run at a '
        "terminal to type it, or load the key into ssh-agent (ssh-add keys/locked) and pass "
        "--sign-with keys/locked.pub\n"
    )
    assert not (folder / APPROVALS).exists()


def test_signing_without_ssh_keygen_is_invalid_input(
    folder: Path, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh-keygen not on PATH: exit 2, saying what to install."""
    write_plan(folder, make_plan())
    monkeypatch.setenv("PATH", str(folder / "empty"))
    code, _, err = _run("--approver", "bob", "--sign-with", "keys/bob")
    assert code == ExitCode.INVALID_INPUT
    assert err == (
        "error: ssh-keygen was not found: SSH signatures need OpenSSH 8.1 or later "
        "(ssh-keygen -Y)\n"
        "hint: install OpenSSH's client tools, then try again\n"
    )

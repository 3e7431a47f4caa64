"""Approvals: the checks `apply` runs first (one test per refusal), the file, SSH signatures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from runner import approval, frozen, signature
from runner.approval import Approval, Reason, Verdict
from runner.errors import ExitCode, InputError, RefusedError
from runner.frozen import FrozenPlan
from tests.approval_support import (
    CREATED,
    NOW,
    OTHER_TENANT,
    TENANT,
    Key,
    allowed_signers,
    make_key,
    make_plan,
    signers_safety,
    write_plan,
)

EXPIRES = CREATED + dt.timedelta(hours=24)


def _never(record: Approval) -> str | None:
    raise AssertionError(f"no signature should be checked here ({record.approver})")


def _good(record: Approval) -> str | None:
    return None


def _check(
    plan: FrozenPlan,
    approvals: list[Approval],
    *,
    expect_digest: str | None = None,
    now: dt.datetime = NOW,
    tenant_id: str = TENANT,
    verify: Any = _never,
) -> Verdict:
    return approval.check(
        plan,
        approvals,
        expect_digest=expect_digest,
        now=now,
        tenant_id=tenant_id,
        verify_signature=verify,
    )


def _by(plan: FrozenPlan, name: str, **changes: Any) -> Approval:
    record = approval.record(plan, approver=name, comment=None, now=NOW)
    return dataclasses.replace(record, **changes)


def _messages(verdict: Verdict) -> list[tuple[Reason, str]]:
    return [(r.reason, r.message) for r in verdict.refusals]


def _edited(plan: FrozenPlan, **content: Any) -> FrozenPlan:
    """The same frozen plan with its content changed and its recorded digest kept."""
    return dataclasses.replace(plan, content={**plan.content, **content})


def _refrozen(plan: FrozenPlan, **content: Any) -> FrozenPlan:
    """The plan with its content changed and a digest that matches the new content."""
    return frozen.freeze({**plan.content, **content}, info={})


# --- the checks, one per refusal reason ------------------------------------------------------


def test_an_approved_plan_in_time_for_its_tenant_passes() -> None:
    """One approval by someone other than the author, in time, same tenant: no refusal."""
    plan = make_plan()
    verdict = _check(plan, [_by(plan, "bob")], expect_digest=plan.digest)
    assert verdict.ok
    assert _messages(verdict) == []
    (assessed,) = verdict.approvals
    assert (assessed.counts, assessed.reason, assessed.verified) == (True, None, None)


def test_a_tampered_content_is_refused() -> None:
    """A content edited after freezing no longer matches its digest."""
    plan = make_plan()
    edited = _edited(plan, warnings=["one more line"])
    actual = frozen.digest_of(edited.content)
    verdict = _check(edited, [_by(plan, "bob")])
    assert _messages(verdict)[0] == (
        Reason.TAMPERED,
        f"the digest does not match the content: the file says {plan.digest}, the content's "
        f"digest is {actual}; the plan was edited after it was frozen: re-plan with entra-bulk "
        "plan and have the new plan approved",
    )


def test_a_different_expect_digest_is_refused() -> None:
    """`--expect-digest` must equal the content's digest."""
    plan = make_plan()
    other = "sha256:" + "0" * 64
    verdict = _check(plan, [_by(plan, "bob")], expect_digest=other)
    assert _messages(verdict) == [
        (
            Reason.EXPECTED_DIGEST,
            f"the plan's digest is {plan.digest}, not the expected {other} (--expect-digest): "
            "this is not the plan that was reviewed; compare with entra-bulk show FILE",
        )
    ]


@pytest.mark.parametrize("form", ["upper", "bare"])
def test_expect_digest_accepts_upper_case_and_a_bare_hex(form: str) -> None:
    """`SHA256:ABC…` and the 64 hex digits alone name the same digest."""
    plan = make_plan()
    given = plan.digest.upper() if form == "upper" else plan.digest.removeprefix("sha256:")
    assert _check(plan, [_by(plan, "bob")], expect_digest=given).ok


def test_an_expired_plan_is_refused_at_its_expiry() -> None:
    """At `expires` (and after), the plan is refused with both times."""
    plan = make_plan()
    assert _check(plan, [_by(plan, "bob")], now=EXPIRES - dt.timedelta(seconds=1)).ok
    verdict = _check(plan, [_by(plan, "bob")], now=EXPIRES)
    assert _messages(verdict) == [
        (
            Reason.EXPIRED,
            "the plan expired at 2026-03-02T12:00:00Z (it is now 2026-03-02T12:00:00Z): re-plan "
            "with entra-bulk plan and have the new plan approved",
        )
    ]


def test_another_tenant_is_refused_naming_both_ids() -> None:
    """A plan made for one tenant is refused by another; the ids are compared case-blind."""
    plan = make_plan()
    assert _check(plan, [_by(plan, "bob")], tenant_id=TENANT.upper()).ok
    verdict = _check(plan, [_by(plan, "bob")], tenant_id=OTHER_TENANT)
    assert _messages(verdict) == [
        (
            Reason.TENANT,
            f"the plan was made for tenant {TENANT}, but the signed-in tenant is {OTHER_TENANT}: "
            f"apply it with a profile of tenant {TENANT} (--tenant PROFILE), or re-plan against "
            f"tenant {OTHER_TENANT}",
        )
    ]


def test_an_unsupported_format_is_refused_alone() -> None:
    """format_version 2: refused, and nothing else of that content is judged."""
    plan = _refrozen(make_plan(), format_version=2, expires="not a time")
    verdict = _check(plan, [], tenant_id=OTHER_TENANT)
    assert _messages(verdict) == [
        (
            Reason.FORMAT,
            "format_version 2 is not supported (this entra-bulk reads 1): apply it with the "
            "entra-bulk that wrote it, or re-plan with this one",
        )
    ]
    assert verdict.approvals == ()


def test_a_malformed_content_is_refused() -> None:
    """A content whose expiry is not a time is refused, not a crash."""
    plan = _refrozen(make_plan(), expires="soon")
    verdict = _check(plan, [])
    assert _messages(verdict) == [
        (
            Reason.MALFORMED,
            "the content is malformed (ValueError(\"Invalid isoformat string: 'soon'\")): "
            "re-plan with entra-bulk plan",
        )
    ]


def test_no_approval_is_refused_with_the_command_to_run() -> None:
    """Zero approvals of one required: the message says who runs what next."""
    plan = make_plan()
    verdict = _check(plan, [])
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            "0 valid approvals of 1 required; next: someone other than the author runs "
            "entra-bulk approve FILE --approver NAME",
        )
    ]


def test_an_approval_for_another_digest_does_not_count() -> None:
    """An approval of an earlier plan does not cover this one (the plan changed after it)."""
    earlier = make_plan(ticket="INC-1")
    plan = make_plan()
    verdict = _check(plan, [_by(earlier, "bob")])
    old, new = earlier.digest[:19], plan.digest[:19]
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            f"0 valid approvals of 1 required; not counted: bob (approves {old}…, not this plan "
            f"({new}…)); next: someone other than the author runs entra-bulk approve FILE "
            "--approver NAME",
        )
    ]


@pytest.mark.parametrize(
    "name", ["adele.vance@CONTOSO.com", "Adele", " adele ", "\uff41\uff44\uff45\uff4c\uff45"]
)
def test_an_approval_by_the_author_does_not_count_and_is_named(name: str) -> None:
    """The author's UPN or local user, in any case or in fullwidth look-alike letters, does not
    count; the message names it."""
    plan = make_plan()
    verdict = _check(plan, [_by(plan, name), _by(plan, "bob")])
    assert _messages(verdict) == []
    verdict = _check(plan, [_by(plan, name)])
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            f"0 valid approvals of 1 required; not counted: {name.strip()} (the plan's author "
            "may not approve it); next: someone other than the author runs entra-bulk approve "
            "FILE --approver NAME",
        )
    ]


def test_an_app_author_is_matched_by_client_id_and_local_user() -> None:
    """For an app-only plan the author is its client id and the local user who ran it."""
    author = {"kind": "app", "name": "11111111-2222-3333-4444-555555555555", "local_user": "svc"}
    plan = make_plan(author=author)
    assert approval.is_author(plan, "11111111-2222-3333-4444-555555555555")
    assert approval.is_author(plan, "SVC")
    assert not approval.is_author(plan, "bob")


def test_an_unsigned_approval_does_not_count_where_signers_are_named() -> None:
    """With safety.allowed_signers, an approval without a signature does not count."""
    plan = make_plan(safety={"allowed_signers": "signers"})
    verdict = _check(plan, [_by(plan, "bob")])
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            "0 valid approvals of 1 required; not counted: bob (unsigned, and "
            "safety.allowed_signers requires a signature); next: someone other than the author "
            "runs entra-bulk approve FILE --approver NAME --sign-with KEY",
        )
    ]


def test_a_badly_signed_approval_does_not_count() -> None:
    """The verifier's reason is the approval's reason; it is not counted."""
    plan = make_plan(safety={"allowed_signers": "signers"})
    record = _by(plan, "bob", signature="-----BEGIN SSH SIGNATURE-----\nAA==\n-----END-----")
    verdict = _check(plan, [record], verify=lambda r: f"no key for {r.approver}")
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            "0 valid approvals of 1 required; not counted: bob (no key for bob); next: someone "
            "other than the author runs entra-bulk approve FILE --approver NAME --sign-with KEY",
        )
    ]
    assert verdict.approvals[0].verified is False


def test_one_approver_counts_once() -> None:
    """Two approvals by the same name (any case) are one approval."""
    plan = make_plan(safety={"required_approvals": 2})
    verdict = _check(plan, [_by(plan, "bob"), _by(plan, "BOB"), _by(plan, "carol")])
    assert verdict.ok
    verdict = _check(plan, [_by(plan, "bob"), _by(plan, "BOB")])
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            "1 valid approval of 2 required (bob); not counted: BOB (BOB already approved this "
            "plan); next: someone other than the author runs entra-bulk approve FILE "
            "--approver NAME",
        )
    ]


def test_no_approval_is_needed_when_none_is_required() -> None:
    """required_approvals: 0 lets a plan through without approvals."""
    plan = make_plan(safety={"required_approvals": 0})
    assert _check(plan, []).ok


def test_every_reason_at_once_and_enforce_raises_exit_3(tmp_path: Path) -> None:
    """All refusals are reported together; `enforce` raises one RefusedError (exit 3)."""
    plan = write_plan(tmp_path, make_plan())
    edited = _edited(plan, warnings=["edited"])
    verdict = _check(edited, [], expect_digest=plan.digest, now=EXPIRES, tenant_id=OTHER_TENANT)
    assert [r.reason for r in verdict.refusals] == [
        Reason.TAMPERED,
        Reason.EXPIRED,
        Reason.EXPECTED_DIGEST,
        Reason.TENANT,
        Reason.APPROVALS,
    ]
    with pytest.raises(RefusedError) as raised:
        approval.enforce(verdict, plan=edited)
    assert raised.value.exit_code == ExitCode.REFUSED
    lines = str(raised.value).splitlines()
    assert lines[0] == f"{tmp_path / 'breach.plan.json'} cannot be applied; nothing was done:"
    assert lines[1:] == [f"  - {r.message}" for r in verdict.refusals]
    approval.enforce(_check(plan, [_by(plan, "bob")]), plan=plan)  # no refusal: no raise


# --- the approvals file --------------------------------------------------------------------


def test_the_approvals_file_is_beside_the_plan() -> None:
    """`x.plan.json` → `x.plan.json.approvals.json`."""
    assert approval.approvals_path(Path("a/x.plan.json")) == Path("a/x.plan.json.approvals.json")


def test_adding_keeps_every_approval_and_round_trips(tmp_path: Path) -> None:
    """Each add appends; the file is a JSON list of records read back equal."""
    plan = write_plan(tmp_path, make_plan())
    assert plan.path is not None
    first = approval.record(plan, approver="bob", comment="looks right", now=NOW)
    second = approval.record(plan, approver="carol", comment=None, now=NOW)
    approval.add(plan.path, first)
    assert approval.add(plan.path, second) == (first, second)
    assert approval.load(plan.path) == (first, second)
    data = json.loads(approval.approvals_path(plan.path).read_text())
    assert data == [
        {
            "approver": "bob",
            "time": "2026-03-01T13:00:00Z",
            "comment": "looks right",
            "digest": plan.digest,
        },
        {
            "approver": "carol",
            "time": "2026-03-01T13:00:00Z",
            "comment": None,
            "digest": plan.digest,
        },
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "breach.plan.json",
        "breach.plan.json.approvals.json",
    ]


def test_concurrent_approvals_are_all_kept(tmp_path: Path) -> None:
    """Eight approvers at once: the lock keeps every record."""
    plan = write_plan(tmp_path, make_plan())
    assert plan.path is not None
    path = plan.path
    names = [f"reviewer{n}" for n in range(8)]
    threads = [
        threading.Thread(
            target=approval.add,
            args=(path, approval.record(plan, approver=name, comment=None, now=NOW)),
        )
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.approver for a in approval.load(path)) == names


def test_no_file_means_no_approvals(tmp_path: Path) -> None:
    """A plan nobody approved has no approvals file and no approvals."""
    assert approval.load(tmp_path / "x.plan.json") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not an approvals file (invalid JSON: Expecting property name enclosed in double "
         "quotes: line 1 column 2 (char 1)); fix or remove it"),
        ('{"approver": "bob"}', "not an approvals file (expected a JSON list of approvals)"),
        ("[1]", "approval 1 is malformed (not an object); fix or remove it"),
        ('[{"approver": "bob", "time": "2026-03-01T13:00:00Z"}]',
         "approval 1 is malformed (no 'digest' text); fix or remove it"),
        ('[{"approver": "bob", "time": "noon", "digest": "sha256:0"}]',
         "approval 1 is malformed ('time' 'noon' is not a time); fix or remove it"),
        ('[{"approver": "bob", "time": "2026-03-01T13:00:00Z", "digest": "x", "comment": 3}]',
         "approval 1 is malformed ('comment' is not text); fix or remove it"),
    ],
)  # fmt: skip
def test_a_broken_approvals_file_is_invalid_input(tmp_path: Path, text: str, message: str) -> None:
    """A broken file is exit 2, naming the file and what is wrong with it."""
    path = tmp_path / "x.plan.json.approvals.json"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        approval.load(tmp_path / "x.plan.json")
    assert str(raised.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("  ", "--approver is empty: give the reviewer's name (with signatures, their principal)"),
        ("bob\u202e", "--approver contains the character U+202E: give a plain name"),
        ("b\x1b[31m", "--approver contains the character U+001B: give a plain name"),
        ("b" * 257, "--approver is longer than 256 characters"),
    ],
)
def test_approver_names_are_plain_text(name: str, message: str) -> None:
    """Empty names, control and bidi characters are refused as invalid input."""
    with pytest.raises(InputError) as raised:
        approval.check_approver(name)
    assert str(raised.value) == message


# --- SSH signatures ------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Key]:
    """Ed25519 keys of bob, carol and eve (none with a passphrase)."""
    return {name: make_key(tmp_path / "keys", name) for name in ("bob", "carol", "eve")}


def _signed_plan(tmp_path: Path, keys: dict[str, Key], **safety: Any) -> FrozenPlan:
    signers = allowed_signers(
        tmp_path / "allowed_signers",
        [("bob@contoso.com", keys["bob"]), ("carol@contoso.com", keys["carol"])],
    )
    return write_plan(tmp_path, make_plan(safety={**signers_safety(signers), **safety}))


def _signed_by(plan: FrozenPlan, name: str, key: Key, digest: str | None = None) -> Approval:
    made = signature.sign(digest or plan.digest, key=key.private)
    return approval.record(plan, approver=name, comment=None, now=NOW, signature=made)


def test_a_signed_approval_verifies_against_allowed_signers(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """bob's key, listed for bob: verified, counted, fingerprint as ssh-keygen -l shows it."""
    plan = _signed_plan(tmp_path, keys)
    record = _signed_by(plan, "bob@contoso.com", keys["bob"])
    verdict = _check(plan, [record], verify=approval.verifier(plan))
    assert verdict.ok
    assert verdict.approvals[0].verified is True
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(keys["bob"].public)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert record.key_fingerprint == listed
    assert signature.signature_key(record.signature or "") == ("ssh-ed25519", listed)


def test_the_allowed_signers_path_is_relative_to_the_plan_folder(
    tmp_path: Path, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`allowed_signers: allowed_signers` is found beside the plan, whatever the cwd."""
    plan = _signed_plan(tmp_path, keys)
    monkeypatch.chdir(tmp_path / "keys")
    assert approval.allowed_signers_path(plan) == tmp_path / "allowed_signers"
    record = _signed_by(plan, "carol@contoso.com", keys["carol"])
    assert _check(plan, [record], verify=approval.verifier(plan)).ok


def test_a_key_not_listed_for_the_approver_does_not_count(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """eve signs as bob: ssh-keygen cannot verify it, and the message says so."""
    plan = _signed_plan(tmp_path, keys)
    verdict = _check(
        plan, [_signed_by(plan, "bob@contoso.com", keys["eve"])], verify=approval.verifier(plan)
    )
    signers = tmp_path / "allowed_signers"
    assert _messages(verdict) == [
        (
            Reason.APPROVALS,
            "0 valid approvals of 1 required; not counted: bob@contoso.com (the signature does "
            f"not verify for principal bob@contoso.com in {signers} (Could not verify "
            "signature.)); next: someone other than the author runs entra-bulk approve "
            f"{plan.path} --approver NAME --sign-with KEY",
        )
    ]


def test_a_signature_over_another_digest_does_not_count(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """A record naming this digest with a signature over another is caught by ssh-keygen."""
    plan = _signed_plan(tmp_path, keys)
    record = _signed_by(plan, "bob@contoso.com", keys["bob"], digest="sha256:" + "1" * 64)
    (assessed,) = approval.assess(plan, [record], verify_signature=approval.verifier(plan))
    assert assessed.reason == (
        "the signature does not verify for principal bob@contoso.com in "
        f"{tmp_path / 'allowed_signers'} (Signature verification failed: incorrect signature)"
    )


def test_one_key_counts_once_whatever_the_names(tmp_path: Path, keys: dict[str, Key]) -> None:
    """bob's key signing as bob and as another listed name is one approval, not two."""
    signers = allowed_signers(
        tmp_path / "allowed_signers",
        [("bob@contoso.com,robert@contoso.com", keys["bob"]), ("carol@contoso.com", keys["carol"])],
    )
    plan = write_plan(
        tmp_path, make_plan(safety={**signers_safety(signers), "required_approvals": 2})
    )
    first = _signed_by(plan, "bob@contoso.com", keys["bob"])
    again = _signed_by(plan, "robert@contoso.com", keys["bob"])
    verdict = _check(plan, [first, again], verify=approval.verifier(plan))
    fingerprint = first.key_fingerprint
    assert [a.reason for a in verdict.approvals] == [
        None,
        f"signed with the same key ({fingerprint}) as the approval by bob@contoso.com",
    ]
    carol = _signed_by(plan, "carol@contoso.com", keys["carol"])
    assert _check(plan, [first, again, carol], verify=approval.verifier(plan)).ok


def test_a_missing_allowed_signers_file_is_named(tmp_path: Path, keys: dict[str, Key]) -> None:
    """No allowed_signers file: the approval does not count, and the file is named."""
    signers = allowed_signers(tmp_path / "signers", [("bob@contoso.com", keys["bob"])])
    safety = {**signers_safety(signers), "allowed_signers": "nowhere/signers"}
    plan = write_plan(tmp_path, make_plan(safety=safety))
    (assessed,) = approval.assess(
        plan,
        [_signed_by(plan, "bob@contoso.com", keys["bob"])],
        verify_signature=approval.verifier(plan),
    )
    assert (
        assessed.reason == f"the allowed_signers file {tmp_path / 'nowhere/signers'} does not exist"
    )


def test_a_plan_that_did_not_bind_its_signers_verifies_nothing(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """allowed_signers without the SHA-256 `plan` records: no signature counts."""
    allowed_signers(tmp_path / "signers", [("bob@contoso.com", keys["bob"])])
    plan = write_plan(tmp_path, make_plan(safety={"allowed_signers": "signers"}))
    (assessed,) = approval.assess(
        plan,
        [_signed_by(plan, "bob@contoso.com", keys["bob"])],
        verify_signature=approval.verifier(plan),
    )
    assert assessed.reason == (
        "the plan does not record the SHA-256 of its allowed_signers file; "
        "re-plan with the file in place"
    )


def test_a_missing_ssh_keygen_is_a_clear_error(tmp_path: Path, keys: dict[str, Key]) -> None:
    """Without ssh-keygen, signing is invalid input and verifying names the cause."""
    program = str(tmp_path / "no-ssh-keygen")
    with pytest.raises(InputError) as raised:
        signature.sign("sha256:00", key=keys["bob"].private, program=program)
    assert str(raised.value) == (
        f"{program} was not found: SSH signatures need OpenSSH 8.1 or later (ssh-keygen -Y)"
    )
    assert raised.value.hint == "install OpenSSH's client tools, then try again"
    plan = _signed_plan(tmp_path, keys)
    record = _signed_by(plan, "bob@contoso.com", keys["bob"])
    check = approval.verifier(plan, program=program)
    assert check(record) == str(raised.value)


def test_a_key_with_a_passphrase_fails_at_once_without_a_terminal(tmp_path: Path) -> None:
    """No terminal to type the passphrase: a clear error that points at ssh-agent."""
    key = make_key(tmp_path, "locked", passphrase="correct horse")
    with pytest.raises(InputError) as raised:
        signature.sign("sha256:00", key=key.private)
    path = key.private
    assert str(raised.value) == (
        f'{path}: the key\'s passphrase was not given or is wrong (Load key "{path}": incorrect '
        "passphrase supplied to decrypt private key): run at a terminal to type it, or load the "
        f"key into ssh-agent (ssh-add {path}) and pass --sign-with {path}.pub"
    )


def test_a_public_key_without_its_agent_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .pub whose private key no agent holds: the message says to run ssh-add."""
    key = make_key(tmp_path, "agentless")
    key.private.unlink()
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(InputError) as raised:
        signature.sign("sha256:00", key=key.public)
    assert str(raised.value) == (
        f"{key.public}: ssh-agent does not hold this key's private key (No private key found for "
        f'public key "{key.public}"): run ssh-add with the private key, or pass the private key '
        "file to --sign-with"
    )


def test_a_missing_key_file_is_invalid_input(tmp_path: Path) -> None:
    """--sign-with a path that does not exist: exit 2 before ssh-keygen runs."""
    with pytest.raises(InputError) as raised:
        signature.sign("sha256:00", key=tmp_path / "nope")
    assert str(raised.value) == f"{tmp_path / 'nope'}: no such key file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not an SSH signature (no -----BEGIN SSH SIGNATURE----- armour)"),
        ("-----BEGIN SSH SIGNATURE-----\n!!\n-----END SSH SIGNATURE-----",
         "not an SSH signature (invalid base64)"),
        ("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
         "not an SSH signature (no SSHSIG magic)"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAP8=\n-----END SSH SIGNATURE-----",
         "not an SSH signature (truncated public key)"),
    ],
)  # fmt: skip
def test_signature_key_rejects_what_is_not_a_signature(text: str, message: str) -> None:
    """The fingerprint reader refuses anything but an armoured SSHSIG blob."""
    with pytest.raises(ValueError, match=r"^not an SSH signature") as raised:
        signature.signature_key(text)
    assert str(raised.value) == message


def test_an_allowed_signers_file_changed_since_planning_verifies_nothing(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """The keys that may approve are part of the plan: adding one afterwards voids approvals."""
    signers = tmp_path / "allowed_signers"
    allowed_signers(signers, [("bob@contoso.com", keys["bob"])])
    recorded = "sha256:" + hashlib.sha256(signers.read_bytes()).hexdigest()
    made = make_plan(safety={"allowed_signers": "allowed_signers"})
    content = dict(made.content)
    content["plan"]["safety"]["allowed_signers_sha256"] = recorded  # as entra-bulk plan records it
    plan = write_plan(tmp_path, frozen.freeze(content, info=dict(made.info)))
    assert _check(
        plan, [_signed_by(plan, "bob@contoso.com", keys["bob"])], verify=approval.verifier(plan)
    ).ok
    allowed_signers(signers, [("bob@contoso.com", keys["bob"]), ("eve@contoso.com", keys["eve"])])
    verdict = _check(
        plan, [_signed_by(plan, "eve@contoso.com", keys["eve"])], verify=approval.verifier(plan)
    )
    assert not verdict.ok
    assert verdict.approvals[0].reason == (
        f"{signers} changed since the plan was made (it was {approval.short(recorded)}); "
        "re-plan to approve with the new keys"
    )

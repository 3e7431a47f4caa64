"""Approvals of a frozen plan, their SSH signatures, and the checks `apply` runs first.

Approvals live beside the plan in `FILE.approvals.json` (for `x.plan.json`:
`x.plan.json.approvals.json`), a JSON list of records

    {"approver", "time", "comment", "digest", "signature"?, "key_fingerprint"?}

Adding one never removes another. An approval covers the digest it names and nothing else.
Where the plan's `safety.allowed_signers` names an ssh allowed_signers file (relative to the
plan file's folder), an approval counts only with an SSH signature made as git signs commits:
`ssh-keygen -Y sign -n entra-bulk-plan` over the digest text (`sha256:<hex>`, no newline),
verified with `ssh-keygen -Y verify -I APPROVER`, the approver being the principal.

`check` is pure (clock, tenant and signature verification are passed in) and gives every
reason to refuse a plan at once; `enforce` turns them into one `RefusedError` (exit 3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.errors import InputError, RefusedError
from runner.frozen import SUPPORTED_FORMATS, FrozenPlan, digest_of, iso, parse_iso
from runner.signature import signature_key, verify

APPROVALS_SUFFIX = ".approvals.json"
APPROVER_MAX = 256

AUTHOR_REASON = "the plan's author may not approve it"
UNSIGNED_REASON = "unsigned, and safety.allowed_signers requires a signature"

# Why an approval does not count (None: it counts); called only where a signature is needed.
SignatureCheck = Callable[["Approval"], str | None]


class Reason(StrEnum):
    """Why a plan is refused."""

    FORMAT = "format"
    MALFORMED = "malformed"
    TAMPERED = "tampered"
    EXPECTED_DIGEST = "expected_digest"
    EXPIRED = "expired"
    TENANT = "tenant"
    APPROVALS = "approvals"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One reason not to apply a plan: what, and what to do next."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """One approval record, bound to the digest it names."""

    approver: str
    time: dt.datetime
    comment: str | None
    digest: str
    signature: str | None = None
    key_fingerprint: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The approvals file's form."""
        data: dict[str, Any] = {
            "approver": self.approver,
            "time": iso(self.time),
            "comment": self.comment,
            "digest": self.digest,
        }
        if self.signature is not None:
            data["signature"] = self.signature
            data["key_fingerprint"] = self.key_fingerprint
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """Whether one approval counts for a plan, and why not."""

    approval: Approval
    counts: bool
    reason: str | None = None  # why it does not count
    verified: bool | None = None  # its signature: verified, failed, or not checked


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Everything `check` found: the refusals, and each approval's assessment."""

    refusals: tuple[Refusal, ...]
    approvals: tuple[Assessment, ...]

    @property
    def ok(self) -> bool:
        """True when nothing refuses the plan."""
        return not self.refusals


# --- the checks (pure) -------------------------------------------------------------------


def where(plan: FrozenPlan) -> str:
    """How messages name the plan file."""
    return str(plan.path) if plan.path is not None else "FILE"


def normalise_digest(text: str) -> str:
    """`sha256:<hex>` in lower case; a bare 64-digit hex gets its `sha256:` prefix."""
    value = text.strip().lower()
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return "sha256:" + value
    return value


def short(digest: str) -> str:
    """A digest shortened for lists: `sha256:` and 12 hex digits."""
    return digest[:19] + "…" if len(digest) > 19 else digest


def fold(name: str) -> str:
    """A name as approvers and authors are compared: NFKC-normalised (so fullwidth or other
    compatibility look-alikes of `root` are `root`), stripped and case-folded."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def author_names(plan: FrozenPlan) -> frozenset[str]:
    """The author's names as approvals are compared with them (see `fold`)."""
    author = plan.content.get("author")
    if isinstance(author, Mapping):
        names: tuple[Any, ...] = (author.get("name"), author.get("local_user"))
    else:
        names = (author,)
    return frozenset(fold(n) for n in names if isinstance(n, str) and fold(n))


def is_author(plan: FrozenPlan, approver: str) -> bool:
    """True when `approver` is the plan's author (its token's name or its local user)."""
    return fold(approver) in author_names(plan)


def signers_setting(plan: FrozenPlan) -> str | None:
    """The plan's `safety.allowed_signers`, or None."""
    try:
        value = plan.safety.get("allowed_signers")
    except (KeyError, TypeError, AttributeError):
        return None
    return str(value) if value else None


def assess(
    plan: FrozenPlan, approvals: Sequence[Approval], *, verify_signature: SignatureCheck
) -> tuple[Assessment, ...]:
    """Each approval's standing: it counts once per approver and per signing key."""
    actual = digest_of(plan.content)
    authors = author_names(plan)
    signed = signers_setting(plan) is not None
    names: set[str] = set()
    keys: dict[str, str] = {}
    result: list[Assessment] = []
    for item in approvals:
        reason: str | None = None
        verified: bool | None = None
        name = fold(item.approver)
        if item.digest != actual:
            reason = f"approves {short(item.digest)}, not this plan ({short(actual)})"
        elif name in authors:
            reason = AUTHOR_REASON
        elif signed and item.signature is None:
            reason = UNSIGNED_REASON
        elif signed:
            reason = verify_signature(item)
            verified = reason is None
        if reason is None and name in names:
            reason = f"{item.approver} already approved this plan"
        key = _key_or_none(item.signature) if signed else None
        if reason is None and key is not None and key in keys:
            reason = f"signed with the same key ({key}) as the approval by {keys[key]}"
        if reason is None:
            names.add(name)
            if key is not None:
                keys[key] = item.approver
        result.append(
            Assessment(approval=item, counts=reason is None, reason=reason, verified=verified)
        )
    return tuple(result)


def integrity(plan: FrozenPlan, *, now: dt.datetime) -> tuple[Refusal, ...]:
    """What makes `plan` unfit to approve or apply, whoever runs it and wherever.

    Its format, its digest, its content's shape and its expiry. An unsupported format is
    judged on the digest alone: the rest of such a content may mean something else to the
    entra-bulk that wrote it.
    """
    refusals: list[Refusal] = []
    actual = digest_of(plan.content)
    version = plan.content.get("format_version")
    if version not in SUPPORTED_FORMATS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_FORMATS))
        message = (
            f"format_version {version!r} is not supported (this entra-bulk reads {supported}): "
            "apply it with the entra-bulk that wrote it, or re-plan with this one"
        )
        refusals.append(Refusal(reason=Reason.FORMAT, message=message))
    if actual != plan.digest:
        message = (
            f"the digest does not match the content: the file says {plan.digest}, the "
            f"content's digest is {actual}; the plan was edited after it was frozen: "
            "re-plan with entra-bulk plan and have the new plan approved"
        )
        refusals.append(Refusal(reason=Reason.TAMPERED, message=message))
    if version not in SUPPORTED_FORMATS:
        return tuple(refusals)
    try:
        # Each of these raises on a malformed content; `check` relies on them afterwards.
        expires, _, _ = plan.expires, plan.tenant_id, int(plan.safety["required_approvals"])
    except (KeyError, TypeError, ValueError) as exc:
        message = f"the content is malformed ({exc!r}): re-plan with entra-bulk plan"
        return (*refusals, Refusal(reason=Reason.MALFORMED, message=message))
    if now >= expires:
        message = (
            f"the plan expired at {iso(expires)} (it is now {iso(now)}): re-plan with "
            "entra-bulk plan and have the new plan approved"
        )
        refusals.append(Refusal(reason=Reason.EXPIRED, message=message))
    return tuple(refusals)


def check(
    plan: FrozenPlan,
    approvals: Sequence[Approval],
    *,
    expect_digest: str | None,
    now: dt.datetime,
    tenant_id: str | None,
    verify_signature: SignatureCheck,
) -> Verdict:
    """Every reason `apply` must refuse `plan`, with what to do next (none: go ahead).

    In order: format, digest, shape, expiry (`integrity`), then `--expect-digest`, the
    signed-in tenant (None: not known, as in `show`), and the approvals that count.
    """
    refusals = list(integrity(plan, now=now))
    if any(r.reason in {Reason.FORMAT, Reason.MALFORMED} for r in refusals):
        return Verdict(refusals=tuple(refusals), approvals=())
    actual = digest_of(plan.content)
    if expect_digest is not None and normalise_digest(expect_digest) != actual:
        message = (
            f"the plan's digest is {actual}, not the expected {normalise_digest(expect_digest)} "
            f"(--expect-digest): this is not the plan that was reviewed; compare with "
            f"entra-bulk show {where(plan)}"
        )
        refusals.append(Refusal(reason=Reason.EXPECTED_DIGEST, message=message))
    planned = plan.tenant_id
    if tenant_id is not None and planned.strip().lower() != tenant_id.strip().lower():
        message = (
            f"the plan was made for tenant {planned}, but the signed-in tenant is {tenant_id}: "
            f"apply it with a profile of tenant {planned} (--tenant PROFILE), or re-plan "
            f"against tenant {tenant_id}"
        )
        refusals.append(Refusal(reason=Reason.TENANT, message=message))
    assessed = assess(plan, approvals, verify_signature=verify_signature)
    required = int(plan.safety["required_approvals"])
    if sum(1 for a in assessed if a.counts) < required:
        message = _approvals_message(plan, assessed, required)
        refusals.append(Refusal(reason=Reason.APPROVALS, message=message))
    return Verdict(refusals=tuple(refusals), approvals=assessed)


def _approvals_message(plan: FrozenPlan, assessed: Sequence[Assessment], required: int) -> str:
    valid = [a.approval.approver for a in assessed if a.counts]
    plural = "" if len(valid) == 1 else "s"
    text = f"{len(valid)} valid approval{plural} of {required} required"
    if valid:
        text += f" ({', '.join(valid)})"
    ignored = [f"{a.approval.approver} ({a.reason})" for a in assessed if not a.counts]
    if ignored:
        text += "; not counted: " + ", ".join(ignored)
    sign = " --sign-with KEY" if signers_setting(plan) is not None else ""
    return (
        f"{text}; next: someone other than the author runs "
        f"entra-bulk approve {where(plan)} --approver NAME{sign}"
    )


def enforce(verdict: Verdict, *, plan: FrozenPlan) -> None:
    """Raise `RefusedError` (exit 3) naming every refusal, if there is any."""
    if verdict.ok:
        return
    lines = "".join(f"\n  - {refusal.message}" for refusal in verdict.refusals)
    msg = f"{where(plan)} cannot be applied; nothing was done:{lines}"
    raise RefusedError(msg)


# --- records and the approvals file -------------------------------------------------------


def check_approver(name: str) -> str:
    """The approver's name, stripped; InputError when empty or not plain text."""
    value = name.strip()
    if not value:
        msg = "--approver is empty: give the reviewer's name (with signatures, their principal)"
        raise InputError(msg)
    for char in value:
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            msg = f"--approver contains the character U+{ord(char):04X}: give a plain name"
            raise InputError(msg)
    if len(value) > APPROVER_MAX:
        msg = f"--approver is longer than {APPROVER_MAX} characters"
        raise InputError(msg)
    return value


def record(
    plan: FrozenPlan,
    *,
    approver: str,
    comment: str | None,
    now: dt.datetime,
    signature: str | None = None,
) -> Approval:
    """An approval of `plan`'s content by `approver` at `now` (signature: over its digest)."""
    return Approval(
        approver=check_approver(approver),
        time=now.replace(microsecond=0),
        comment=comment or None,
        digest=digest_of(plan.content),
        signature=signature,
        key_fingerprint=None if signature is None else signature_key(signature)[1],
    )


def approvals_path(plan_path: Path) -> Path:
    """`FILE.approvals.json` beside the plan file."""
    return plan_path.with_name(plan_path.name + APPROVALS_SUFFIX)


def _problem(data: Any) -> str | None:
    """What is wrong with one record of the approvals file, or None."""
    if not isinstance(data, Mapping):
        return "not an object"
    for key in ("approver", "time", "digest"):
        if not isinstance(data.get(key), str):
            return f"no {key!r} text"
    for key in ("comment", "signature", "key_fingerprint"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            return f"{key!r} is not text"
    try:
        parse_iso(data["time"])
    except ValueError:
        return f"'time' {data['time']!r} is not a time"
    return None


def _from_json(data: Any, *, path: Path, number: int) -> Approval:
    problem = _problem(data)
    if problem is not None:
        msg = f"{path}: approval {number} is malformed ({problem}); fix or remove it"
        raise InputError(msg)
    return Approval(
        approver=data["approver"],
        time=parse_iso(data["time"]),
        comment=data.get("comment"),
        digest=data["digest"],
        signature=data.get("signature"),
        key_fingerprint=data.get("key_fingerprint"),
    )


def load(plan_path: Path) -> tuple[Approval, ...]:
    """The approvals recorded for the plan at `plan_path` (none when there is no file)."""
    path = approvals_path(plan_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        msg = f"{path}: cannot read the approvals: {exc.strerror}"
        raise InputError(msg) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        msg = f"{path}: not an approvals file (invalid JSON: {exc}); fix or remove it"
        raise InputError(msg) from None
    if not isinstance(data, list):
        msg = f"{path}: not an approvals file (expected a JSON list of approvals)"
        raise InputError(msg)
    return tuple(_from_json(item, path=path, number=n) for n, item in enumerate(data, 1))


@contextmanager
def _exclusive(plan_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the plan file while its approvals are rewritten (POSIX)."""
    if sys.platform == "win32":  # pragma: no cover - no flock; approvals are rare events
        yield
        return
    import fcntl

    fd = os.open(plan_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def add(plan_path: Path, approval: Approval) -> tuple[Approval, ...]:
    """Append `approval` to the plan's approvals file atomically; all approvals after it."""
    path = approvals_path(plan_path)
    with _exclusive(plan_path):
        approvals = (*load(plan_path), approval)
        text = json.dumps([a.as_json() for a in approvals], indent=2, ensure_ascii=False)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    return approvals


# --- signatures --------------------------------------------------------------------------


def _key_or_none(signature: str | None) -> str | None:
    if signature is None:
        return None
    try:
        return signature_key(signature)[1]
    except ValueError:
        return None


def ssh_verifier(allowed_signers: Path, *, program: str = "ssh-keygen") -> SignatureCheck:
    """A `SignatureCheck` that runs `ssh-keygen -Y verify` against `allowed_signers`."""

    def verify_approval(approval: Approval) -> str | None:
        if approval.signature is None:
            return UNSIGNED_REASON
        return verify(
            approval.digest,
            approval.signature,
            principal=approval.approver,
            allowed_signers=allowed_signers,
            program=program,
        )

    return verify_approval


def allowed_signers_path(plan: FrozenPlan) -> Path | None:
    """The plan's allowed_signers file, relative to the plan file's folder."""
    setting = signers_setting(plan)
    if setting is None:
        return None
    path = Path(setting).expanduser()
    if not path.is_absolute() and plan.path is not None:
        path = plan.path.parent / path
    return path


def verifier(plan: FrozenPlan, *, program: str = "ssh-keygen") -> SignatureCheck:
    """The `SignatureCheck` for `plan` (its allowed_signers file, through ssh-keygen).

    When the plan recorded the file's sha256 at planning time, a file changed since (a key
    added, say) verifies nothing: the keys that may approve are part of what was approved.
    """
    path = allowed_signers_path(plan)
    if path is None:
        return lambda approval: "the plan names no safety.allowed_signers to verify against"
    recorded = plan.safety.get("allowed_signers_sha256")
    if not recorded:
        # `plan` always binds the file it was given; without that binding, whoever writes the
        # file would choose whose signature counts.
        missing = (
            "the plan does not record the SHA-256 of its allowed_signers file; "
            "re-plan with the file in place"
        )
        return lambda approval: missing
    try:
        current = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        gone = f"the allowed_signers file {path} does not exist"
        return lambda approval: gone
    except OSError:
        current = "unreadable"
    if current != recorded:
        reason = (
            f"{path} changed since the plan was made (it was {short(str(recorded))}); "
            "re-plan to approve with the new keys"
        )
        return lambda approval: reason
    return ssh_verifier(path, program=program)

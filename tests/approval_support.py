"""Frozen plans from literal data, a fixed clock, and SSH keys for approval tests.

No Graph is needed: targets are written as the planner would freeze them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import frozen, plan
from runner.actions.base import Change, ChangeKind
from runner.frozen import FrozenPlan, FrozenTarget

CREATED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOW = CREATED + dt.timedelta(hours=1)
TENANT = "8f1c2b3a-0000-4000-8000-00000000a11c"
OTHER_TENANT = "1d2e3f40-0000-4000-8000-0000000000b2"
AUTHOR = {"kind": "user", "name": "Adele.Vance@contoso.com", "local_user": "adele"}


def target(
    upn: str,
    name: str,
    *changes: tuple[str, ChangeKind, str],
    roles: Sequence[str] = (),
    refused: str | None = None,
    user_type: str = "Member",
    synced: bool = False,
    warnings: Sequence[str] = (),
    number: int = 1,
) -> FrozenTarget:
    """A frozen target with one change per `(action, kind, summary)`."""
    return FrozenTarget(
        object_id=f"5a1b0c3e-0000-4000-8000-{number:012d}",
        upn=upn,
        display_name=name,
        user_type=user_type,
        synced=synced,
        privileged_roles=tuple(roles),
        fingerprint=f"fp-{number}",
        changes=tuple(
            Change(
                action=action,
                kind=kind,
                summary=summary,
                warnings=tuple(warnings) if index == 0 else (),
            )
            for index, (action, kind, summary) in enumerate(changes)
        ),
        refused=refused,
    )


SMALL_TARGETS = (
    target(
        "megan.bowen@contoso.com",
        "Megan Bowen",
        ("reset_password", ChangeKind.CHANGE, "will set a generated temporary password"),
        (
            "require_mfa_reregistration",
            ChangeKind.CHANGE,
            "will delete 2 methods: mobile phone +1 555 0100, Authenticator on iPhone",
        ),
        (
            "delete_app_passwords",
            ChangeKind.MANUAL,
            "manual: Graph has no API to delete app passwords",
        ),
        synced=True,
        warnings=("synced from on-premises: Graph refuses the password write",),
        number=1,
    ),
    target(
        "lee.gu@contoso.com",
        "Lee Gu",
        ("reset_password", ChangeKind.REFUSED, "refused: privileged role Global Administrator"),
        (
            "require_mfa_reregistration",
            ChangeKind.REFUSED,
            "refused: privileged role Global Administrator",
        ),
        (
            "delete_app_passwords",
            ChangeKind.REFUSED,
            "refused: privileged role Global Administrator",
        ),
        roles=("Global Administrator",),
        refused="privileged role Global Administrator",
        number=2,
    ),
    target(
        "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "Guest User",
        ("reset_password", ChangeKind.CHANGE, "will set a generated temporary password"),
        ("require_mfa_reregistration", ChangeKind.NOOP, "no-op: no methods of kinds phone"),
        (
            "delete_app_passwords",
            ChangeKind.MANUAL,
            "manual: Graph has no API to delete app passwords",
        ),
        user_type="Guest",
        number=3,
    ),
)


def make_plan(
    *,
    targets: Sequence[FrozenTarget] = SMALL_TARGETS,
    safety: dict[str, Any] | None = None,
    tenant: str = TENANT,
    emulated: bool = False,
    author: dict[str, str] | None = None,
    unresolved: Sequence[dict[str, str]] = (),
    warnings: Sequence[str] = (),
    ticket: str | None = "INC-4821",
    created: dt.datetime = CREATED,
) -> FrozenPlan:
    """A frozen plan of `targets` made at `created` (expires 24 hours later by default).

    The plan's actions are the targets' actions in their first order.
    """
    safety = dict(safety or {})
    # `plan` adds the signers file's hash to the frozen safety section (not a plan-file key).
    signers_sha256 = safety.pop("allowed_signers_sha256", None)
    source = plan.build(
        {
            "version": 1,
            "name": "breach-2026-03-01",
            "ticket": ticket,
            "actions": list(dict.fromkeys(c.action for t in targets for c in t.changes))
            or ["revoke_sessions"],
            "targets": [{"user": t.upn} for t in targets] or [{"user": "nobody@contoso.com"}],
            "safety": safety,
        }
    )
    content = frozen.build_content(
        plan=source,
        tenant_id=tenant,
        cloud="global",
        emulated=emulated,
        author=author or AUTHOR,
        created=created,
        targets=targets,
        unresolved=[{k: v for k, v in u.items() if k != "source"} for u in unresolved],
        warnings=warnings,
    )
    if signers_sha256 is not None:
        content["plan"]["safety"]["allowed_signers_sha256"] = signers_sha256
    # As the planner does: where an unresolved target was written is outside the digest.
    info = {
        "graph_url": "https://graph.microsoft.com",
        "unresolved_sources": [u.get("source", "") for u in unresolved],
    }
    return frozen.freeze(content, info=info)


def write_plan(folder: Path, plan_: FrozenPlan, name: str = "breach.plan.json") -> FrozenPlan:
    """Write `plan_` into `folder` and read it back (so that it has a path)."""
    path = folder / name
    frozen.write(plan_, path)
    return frozen.read(path)


@dataclass(frozen=True, slots=True)
class Key:
    """An ed25519 key pair made with ssh-keygen."""

    private: Path
    public: Path

    def line(self, principal: str) -> str:
        """This key's allowed_signers line for `principal`."""
        kind, blob = self.public.read_text().split()[:2]
        return f"{principal} {kind} {blob}"


def make_key(folder: Path, name: str, *, passphrase: str = "") -> Key:
    """A new ed25519 key in `folder` (`ssh-keygen -t ed25519 -N ''`)."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", str(private)],
        check=True,
        capture_output=True,
    )
    return Key(private=private, public=folder / f"{name}.pub")


def allowed_signers(path: Path, entries: Sequence[tuple[str, Key]]) -> Path:
    """Write an allowed_signers file of `(principal, key)` lines."""
    path.write_text("".join(key.line(principal) + "\n" for principal, key in entries))
    return path


def signers_safety(path: Path) -> dict[str, str]:
    """The safety settings `plan` records for the allowed_signers file at `path` (named
    relative to the plan's folder, as the plan writes it there)."""
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return {"allowed_signers": path.name, "allowed_signers_sha256": digest}

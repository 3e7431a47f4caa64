"""The dry-run: resolve targets, read their state, apply the rails, diff, freeze.

    frozen = make_plan(plan, connection, now=now, source=path)

Read-only against the tenant. The result is exactly what a reviewer approves: per target its
identity, risk and fingerprint, and per action what it will do now or why not.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.actions.base import Change, ChangeKind
from runner.actions.behaviours import behaviour, reads_for
from runner.config import Settings
from runner.engine.pacer import Pacer
from runner.engine.reader import PageError, Reader
from runner.errors import AuthError, RefusedError
from runner.frozen import FrozenPlan, FrozenTarget, build_content, freeze
from runner.graph.auth import TokenProvider, decode_claims
from runner.graph.client import GraphClient
from runner.plan import Plan, TargetKind
from runner.preflight import Caller, check, role_problem
from runner.resolve import (
    BETA_ONLY_KINDS,
    Resolution,
    privileged_roles,
    protected_group_members,
    read_details,
    resolve,
    verified_domains,
)
from runner.safety import build_rails, over_limit, refusal

Note = Callable[[str], None]


def identify(tokens: TokenProvider, settings: Settings) -> Caller:
    """The caller behind the token, checked against the profile's tenant."""
    caller = Caller.from_claims(decode_claims(tokens.access_token()))
    if settings.tenant_id and caller.tenant_id and caller.tenant_id != settings.tenant_id:
        msg = (
            f"the token is for tenant {caller.tenant_id}, but profile {settings.profile!r} "
            f"names tenant {settings.tenant_id}"
        )
        raise AuthError(msg)
    return caller


def app_directory_roles(reader: Reader, caller: Caller) -> frozenset[str] | None:
    """The display names of the app's directory roles, or None when they cannot be read."""
    try:
        items = list(
            reader.pages(
                f"/servicePrincipals/{caller.object_id}/memberOf",
                params={"$select": "id,displayName"},
            )
        )
    except PageError:
        return None
    return frozenset(
        str(item.get("displayName"))
        for item in items
        if str(item.get("@odata.type", "")).endswith("directoryRole")
    )


def refresher(tokens: TokenProvider) -> Callable[[], None]:
    """A callback that makes the token provider fetch a fresh token (after a 401)."""

    def refresh() -> None:
        tokens.access_token(refresh=True)

    return refresh


def _author(caller: Caller) -> dict[str, str]:
    local = getpass.getuser()
    if caller.delegated and caller.upn:
        return {"kind": "user", "name": caller.upn, "local_user": local}
    return {"kind": "app", "name": caller.app_id, "local_user": local}


def _file_hash(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def make_plan(
    plan: Plan,
    *,
    client: GraphClient,
    tokens: TokenProvider,
    settings: Settings,
    now: dt.datetime,
    source: Path | None = None,
    note: Note | None = None,
    pacer: Pacer | None = None,
    allowed_signers_sha256: str | None = None,
    on_read: Callable[[int], None] | None = None,
) -> FrozenPlan:
    """Dry-run `plan` against the tenant and freeze the result."""
    say = note or (lambda _text: None)
    caller = identify(tokens, settings)
    actions = plan.used_actions()
    groups = any(t.kind is TargetKind.GROUP for t in plan.targets) or bool(
        plan.safety.protected_groups or settings.protected_groups
    )
    check(caller, actions, groups=groups)
    reader = Reader(
        client, pacer or Pacer(settings.limits), refresh_token=refresher(tokens), on_read=on_read
    )
    warnings: list[str] = []
    if not caller.delegated:
        refused, warning = role_problem(app_directory_roles(reader, caller), actions)
        if refused:
            raise AuthError(refused, hint="assign the role to the app's service principal")
        if warning:
            warnings.append(warning)
    say(f"Resolving {len(plan.targets)} target entries as {caller.describe()} ...")
    domains = verified_domains(reader)
    roles = privileged_roles(reader, warnings)
    resolution = resolve(plan, reader, roles=roles, domains=domains, resolution=Resolution())
    warnings.extend(resolution.warnings)
    group_members = protected_group_members(
        reader, (*plan.safety.protected_groups, *settings.protected_groups)
    )
    rails = build_rails(
        plan_users=plan.safety.protected_users,
        profile_users=settings.protected_users,
        group_members=group_members,
        allow_privileged=plan.safety.allow_privileged,
        caller_id=caller.object_id if caller.delegated else None,
        max_targets=plan.safety.max_targets,
    )
    refusals = {t.state.id: refusal(t.state, rails) for t in resolution.targets}
    acting = [t for t in resolution.targets if refusals[t.state.id] is None]
    limit = over_limit(len(acting), rails)
    if limit:
        raise RefusedError(limit, hint="split the plan, or raise safety.max_targets if intended")
    say(f"Reading the state of {len(acting)} users ...")
    needed = reads_for(actions)
    kinds = {
        kind
        for name in actions
        for kind in plan.options.get(name, {}).get("method_types", ())  # type: ignore[union-attr]
    }
    details = read_details(
        reader,
        [t.state for t in acting],
        needed,
        beta_methods=bool(kinds & BETA_ONLY_KINDS),
        warnings=warnings,
    )
    frozen_targets: list[FrozenTarget] = []
    sources: dict[str, str] = {}
    for target in resolution.targets:
        reason = refusals[target.state.id]
        state = details.get(target.state.id, target.state)
        changes: list[Change] = []
        for name in target.actions:
            if reason is not None:
                changes.append(
                    Change(action=name, kind=ChangeKind.REFUSED, summary=f"refused: {reason}")
                )
            else:
                changes.append(behaviour(name).diff(state, plan.options.get(name, {})))
        frozen_targets.append(
            FrozenTarget(
                object_id=state.id,
                upn=state.upn,
                display_name=state.display_name,
                user_type=state.user_type,
                synced=state.synced,
                privileged_roles=state.privileged_roles,
                fingerprint=state.fingerprint(),
                changes=tuple(changes),
                refused=reason,
                note=target.selector.note,
                ticket=target.selector.ticket,
            )
        )
        if target.selector.source is not None:
            sources[state.id] = str(target.selector.source)
    unresolved = [
        {
            "kind": str(u.selector.kind),
            "value": u.selector.value,
            "reason": u.reason,
        }
        for u in resolution.unresolved
    ]
    # Where each was written is shown to the reviewer but kept out of the digest: moving or
    # reformatting the source must not change it (product-spec section 6).
    unresolved_sources = [
        str(u.selector.source) if u.selector.source else "" for u in resolution.unresolved
    ]
    content = build_content(
        plan=plan,
        tenant_id=caller.tenant_id or settings.tenant_id,
        cloud=settings.cloud.name,
        emulated=settings.is_emulator,
        author=_author(caller),
        created=now,
        targets=frozen_targets,
        unresolved=unresolved,
        warnings=sorted(set(warnings)),
    )
    if allowed_signers_sha256 is not None:
        # The approval keys are bound to the plan: editing the signers file voids approvals.
        content["plan"]["safety"]["allowed_signers_sha256"] = allowed_signers_sha256
    info: dict[str, Any] = {
        "graph_url": settings.graph_url,
        "source": {"path": str(source) if source else None, "sha256": _file_hash(source)},
        "target_sources": sources,
        "unresolved_sources": unresolved_sources,
        "reads": reader.requests_sent,
    }
    return freeze(content, info=info)


__all__ = ["identify", "make_plan", "refresher"]

"""Preflight: does the token carry what the planned actions need? Decided before any Graph call.

The token's `roles` (app-only) or `scp` (delegated) claim is compared with each action's
least-privileged permission (graph-reference.md); every missing one is named, and the
command stops with exit 5. For app-only tokens the app's directory roles are read where the
token allows it, since Graph also wants a role for the sensitive user writes (password
reset, enable/disable, session revocation; graph-reference §1a, §7, §11).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Read, least_privileged
from runner.actions.behaviours import behaviour, reads_for
from runner.errors import AuthError

# Roles that let an application reset passwords and change accounts of ordinary users.
SENSITIVE_ROLES = {
    "Password Administrator",
    "Helpdesk Administrator",
    "Authentication Administrator",
    "User Administrator",
    "Privileged Authentication Administrator",
    "Global Administrator",
}
SENSITIVE_ACTIONS = ("reset_password", "disable_account", "enable_account", "revoke_sessions")
ADMIN_CAPABLE_ROLES = {"Privileged Authentication Administrator", "Global Administrator"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who the token says is calling."""

    delegated: bool
    tenant_id: str
    app_id: str
    object_id: str
    upn: str | None
    granted: frozenset[str]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Caller:
        """From a decoded access token."""
        delegated = "scp" in claims
        granted = (
            frozenset(str(claims.get("scp", "")).split())
            if delegated
            else frozenset(str(role) for role in claims.get("roles", []))
        )
        return cls(
            delegated=delegated,
            tenant_id=str(claims.get("tid", "")),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            object_id=str(claims.get("oid", "")).lower(),
            upn=str(claims.get("upn") or claims.get("preferred_username") or "") or None,
            granted=granted,
        )

    def describe(self) -> str:
        """`app 1111... (app-only)` or `adele@contoso.com (delegated)`."""
        return f"{self.upn} (delegated)" if self.delegated else f"app {self.app_id} (app-only)"


def missing_permissions(caller: Caller, actions: Iterable[str], *, groups: bool) -> list[str]:
    """`what: needs Permission` for everything the token lacks (empty when all is there)."""
    actions = list(actions)
    needs: list[tuple[str, frozenset[str]]] = [("reading users", p.READ_USERS)]
    needs.append(("reading privileged role holders", p.READ_ROLES))
    if groups:
        needs.append(("expanding groups", p.READ_GROUP_MEMBERS))
    reads = reads_for(actions)
    if Read.METHODS in reads or Read.SIGN_IN_PREFERENCES in reads:
        needs.append(("reading authentication methods", p.READ_METHODS))
    if Read.REQUIREMENTS in reads:
        needs.append(("reading per-user MFA states", p.READ_MFA_REQUIREMENTS))
    for name in actions:
        spec = behaviour(name).permissions
        groups_needed = spec.delegated if caller.delegated else spec.app
        needs.extend((name, group) for group in groups_needed)
    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for what, group in needs:
        if caller.granted.isdisjoint(group):
            key = (what, least_privileged(group))
            if key not in seen:
                seen.add(key)
                lines.append(f"{what} needs {least_privileged(group)}")
    return lines


def check(caller: Caller, actions: Iterable[str], *, groups: bool) -> None:
    """Refuse (exit 5) naming every missing permission."""
    lines = missing_permissions(caller, actions, groups=groups)
    if lines:
        kind = "delegated permission" if caller.delegated else "application permission"
        msg = f"the token of {caller.describe()} lacks what the plan needs: " + "; ".join(lines)
        raise AuthError(
            msg,
            hint=f"grant the {kind}s above (with admin consent) and try again; nothing was sent",
        )


def role_problem(
    app_roles: frozenset[str] | None, actions: Iterable[str]
) -> tuple[str | None, str | None]:
    """(refusal, warning) about an app's directory roles for the sensitive actions."""
    sensitive = [name for name in actions if name in SENSITIVE_ACTIONS]
    if not sensitive:
        return None, None
    if app_roles is None:
        return None, (
            "could not read this app's directory roles: "
            f"{', '.join(sensitive)} also need the app to hold a role such as User Administrator "
            "(Privileged Authentication Administrator for administrators)"
        )
    if app_roles.isdisjoint(SENSITIVE_ROLES):
        return (
            f"{', '.join(sensitive)} need the app to hold a directory role such as User "
            "Administrator (Privileged Authentication Administrator to act on administrators); "
            f"it holds {', '.join(sorted(app_roles)) or 'none'}",
            None,
        )
    if app_roles.isdisjoint(ADMIN_CAPABLE_ROLES):
        return None, (
            f"the app holds {', '.join(sorted(app_roles & SENSITIVE_ROLES))}: Graph will refuse "
            "these actions on administrators (Privileged Authentication Administrator can)"
        )
    return None, None

"""Who is calling and what they may do: permissions, directory roles, the reset matrix.

A `Principal` comes from a verified access token. Graph checks two things for the calls we
emulate: the token's permission (`roles` for app-only, `scp` for delegated) and, for the
sensitive actions, the caller's directory role against the target's roles ("Who can reset
passwords", graph-reference.md section 11). Both failures are 403
`Authorization_RequestDenied`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runner.emulator.wire import GraphError

DENIED_MESSAGE = "Insufficient privileges to complete the operation."

# Role template ids of Entra's built-in roles (stable across tenants).
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_AUTH_ADMIN = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
AUTH_ADMIN = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
PASSWORD_ADMIN = "966707d0-3269-4727-9be2-8c3a10f19b9d"
GROUPS_ADMIN = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
AUTH_POLICY_ADMIN = "0526716b-113d-4c15-b2c8-68e3c22b9f80"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
GUEST_INVITER = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
MESSAGE_CENTER_READER = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"
USAGE_SUMMARY_READER = "75934031-6c7e-415a-99d7-48dbd49e875e"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
SHAREPOINT_ADMIN = "f28a1f50-f6e7-4571-818b-6a12f2af6b6c"
CONDITIONAL_ACCESS_ADMIN = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9"
APPLICATION_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
SECURITY_READER = "5d6b6bb7-de71-4623-b4af-96380a352509"

# (template id, display name, isPrivileged) of the roles the emulated tenant knows.
BUILTIN_ROLES: tuple[tuple[str, str, bool], ...] = (
    (GLOBAL_ADMIN, "Global Administrator", True),
    (PRIVILEGED_AUTH_ADMIN, "Privileged Authentication Administrator", True),
    (PRIVILEGED_ROLE_ADMIN, "Privileged Role Administrator", True),
    (USER_ADMIN, "User Administrator", True),
    (AUTH_ADMIN, "Authentication Administrator", True),
    (HELPDESK_ADMIN, "Helpdesk Administrator", True),
    (PASSWORD_ADMIN, "Password Administrator", True),
    (SECURITY_ADMIN, "Security Administrator", True),
    (CONDITIONAL_ACCESS_ADMIN, "Conditional Access Administrator", True),
    (APPLICATION_ADMIN, "Application Administrator", True),
    (GLOBAL_READER, "Global Reader", True),
    (SECURITY_READER, "Security Reader", True),
    (AUTH_POLICY_ADMIN, "Authentication Policy Administrator", False),
    (GROUPS_ADMIN, "Groups Administrator", False),
    (EXCHANGE_ADMIN, "Exchange Administrator", False),
    (SHAREPOINT_ADMIN, "SharePoint Administrator", False),
    (DIRECTORY_READERS, "Directory Readers", False),
    (GUEST_INVITER, "Guest Inviter", False),
    (MESSAGE_CENTER_READER, "Message Center Reader", False),
    (REPORTS_READER, "Reports Reader", False),
    (USAGE_SUMMARY_READER, "Usage Summary Reports Reader", False),
)
ROLE_NAMES = {template: name for template, name, _ in BUILTIN_ROLES}
ROLE_BY_NAME = {name: template for template, name, _ in BUILTIN_ROLES}

# "Who can reset passwords / invalidate refresh tokens": for each target role, the acting
# roles allowed. A target role not listed falls in the last row: PAA and GA only.
_PA, _HA, _AA, _UA, _PAA, _GA = (
    PASSWORD_ADMIN,
    HELPDESK_ADMIN,
    AUTH_ADMIN,
    USER_ADMIN,
    PRIVILEGED_AUTH_ADMIN,
    GLOBAL_ADMIN,
)
_EVERYONE = frozenset({_PA, _HA, _AA, _UA, _PAA, _GA})
_MATRIX: dict[str, frozenset[str]] = {
    DIRECTORY_READERS: _EVERYONE,
    GUEST_INVITER: _EVERYONE,
    PASSWORD_ADMIN: _EVERYONE,
    MESSAGE_CENTER_READER: frozenset({_HA, _AA, _UA, _PAA, _GA}),
    REPORTS_READER: frozenset({_HA, _AA, _UA, _PAA, _GA}),
    USAGE_SUMMARY_READER: frozenset({_HA, _AA, _UA, _PAA, _GA}),
    HELPDESK_ADMIN: frozenset({_HA, _UA, _PAA, _GA}),
    GROUPS_ADMIN: frozenset({_UA, _PAA, _GA}),
    USER_ADMIN: frozenset({_UA, _PAA, _GA}),
    AUTH_ADMIN: frozenset({_AA, _PAA, _GA}),
}
_TOP_ROW = frozenset({_PAA, _GA})

# Roles that may manage other users' authentication methods (delegated calls).
METHOD_WRITERS = frozenset({AUTH_ADMIN, PRIVILEGED_AUTH_ADMIN, GLOBAL_ADMIN})
METHOD_READERS = METHOD_WRITERS | {GLOBAL_READER, SECURITY_READER, SECURITY_ADMIN}
# Roles that may change per-user MFA state (delegated).
POLICY_WRITERS = frozenset({AUTH_POLICY_ADMIN, GLOBAL_ADMIN})


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The caller behind a verified token."""

    kind: str  # "app" (client credentials or managed identity) | "user" (delegated)
    app_id: str  # client id of the application
    object_id: str  # service principal object id (app) or user object id (delegated)
    tenant_id: str
    permissions: frozenset[str]  # `roles` (app) or `scp` (delegated)
    upn: str | None = None
    token_id: str = ""

    @property
    def is_app(self) -> bool:
        """True for app-only tokens."""
        return self.kind == "app"


def require_permission(principal: Principal, accepted: Iterable[str]) -> None:
    """403 unless the token carries one of the accepted permissions."""
    if principal.permissions.isdisjoint(accepted):
        raise GraphError(403, "Authorization_RequestDenied", DENIED_MESSAGE)


def can_act_on(actor_roles: Iterable[str], target_roles: Iterable[str]) -> bool:
    """The reset matrix: may an actor holding `actor_roles` act on a target holding these?"""
    actor = frozenset(actor_roles)
    if actor.isdisjoint(_EVERYONE):
        return False
    for role in target_roles:
        allowed = _MATRIX.get(role, _TOP_ROW)
        if actor.isdisjoint(allowed):
            return False
    return True


def require_role_over(actor_roles: Iterable[str], target_roles: Iterable[str]) -> None:
    """403 unless the acting roles cover every role of the target (matrix above)."""
    if not can_act_on(actor_roles, target_roles):
        raise GraphError(403, "Authorization_RequestDenied", DENIED_MESSAGE)


def require_any_role(actor_roles: Iterable[str], accepted: Iterable[str]) -> None:
    """403 unless the actor holds one of the accepted roles."""
    if frozenset(actor_roles).isdisjoint(accepted):
        raise GraphError(403, "Authorization_RequestDenied", DENIED_MESSAGE)


# Permissions Graph accepts for each kind of call (least privileged first), app or delegated.
READ_USERS = frozenset(
    {
        "User.Read.All",
        "User.ReadBasic.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_GROUP_MEMBERS = frozenset(
    {
        "GroupMember.ReadBasic.All",
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_ROLES = frozenset(
    {
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_APPLICATIONS = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}
)
READ_ORGANIZATION = frozenset(
    {"Organization.Read.All", "Directory.Read.All", "Domain.Read.All", "User.Read.All"}
)
READ_METHODS = frozenset(
    {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"}
)
WRITE_METHODS = frozenset({"UserAuthenticationMethod.ReadWrite.All"})
WRITE_TAP = frozenset(
    {"UserAuthMethod-TAP.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"}
)
WRITE_PASSWORD_PROFILE = frozenset(
    {"User-PasswordProfile.ReadWrite.All", "Directory.ReadWrite.All"}
)
WRITE_ACCOUNT_ENABLED = frozenset(
    {"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
)
WRITE_USER = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
REVOKE_SESSIONS = frozenset(
    {"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
)
READ_MFA_REQUIREMENTS = frozenset({"Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"})
WRITE_MFA_REQUIREMENTS = frozenset({"Policy.ReadWrite.AuthenticationMethod"})

# Every permission the runner can use: the first app of emulator.json holds all of them.
RUNNER_PERMISSIONS: tuple[str, ...] = (
    "User.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Application.Read.All",
    "Organization.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All",
    "User.EnableDisableAccount.All",
    "Policy.Read.All",
    "Policy.ReadWrite.AuthenticationMethod",
)
READ_ONLY_PERMISSIONS: tuple[str, ...] = (
    "User.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Application.Read.All",
    "Organization.Read.All",
    "UserAuthenticationMethod.Read.All",
    "Policy.Read.All",
)

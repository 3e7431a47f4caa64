"""Graph permissions the runner's calls need (graph-reference.md; least privileged first).

Each constant is "any of these"; the first name is the one to grant. The emulated tenant
keeps its own copy of these rules (`runner/emulator/authz.py`) on purpose: it plays Graph,
and a mistake here must show up as a 403 from it rather than be shared by both sides.
"""

from __future__ import annotations

READ_USERS = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
READ_GROUP_MEMBERS = frozenset(
    {
        "GroupMember.Read.All",
        "GroupMember.ReadBasic.All",
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
READ_METHODS = frozenset(
    {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"}
)
WRITE_METHODS = frozenset({"UserAuthenticationMethod.ReadWrite.All"})
WRITE_TAP = frozenset(
    {"UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All"}
)
WRITE_PASSWORD_PROFILE = frozenset(
    {"User-PasswordProfile.ReadWrite.All", "Directory.ReadWrite.All"}
)
REVOKE_SESSIONS = frozenset(
    {"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
)
WRITE_ACCOUNT_ENABLED = frozenset(
    {"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
)
READ_MFA_REQUIREMENTS = frozenset({"Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"})
WRITE_MFA_REQUIREMENTS = frozenset({"Policy.ReadWrite.AuthenticationMethod"})
READ_APPLICATIONS = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}
)

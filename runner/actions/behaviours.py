"""The behaviour of every action, by canonical name (a test proves it covers the registry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from runner.actions import registry
from runner.actions.account import SetAccountEnabled
from runner.actions.app_passwords import DeleteAppPasswords
from runner.actions.base import Behaviour, Read
from runner.actions.methods import CreateAccessPass, DeleteMethods
from runner.actions.mfa_state import SetPerUserMfa
from runner.actions.password import ResetPassword
from runner.actions.sessions import RevokeSessions

BEHAVIOURS: Mapping[str, Behaviour] = MappingProxyType(
    {
        "reset_password": ResetPassword(),
        "require_mfa_reregistration": DeleteMethods(name="require_mfa_reregistration"),
        "revoke_sessions": RevokeSessions(),
        "delete_app_passwords": DeleteAppPasswords(),
        "disable_account": SetAccountEnabled(enabled=False),
        "enable_account": SetAccountEnabled(enabled=True),
        "set_per_user_mfa": SetPerUserMfa(),
        "create_temporary_access_pass": CreateAccessPass(),
        "remove_auth_methods": DeleteMethods(name="remove_auth_methods"),
    }
)


def behaviour(name: str) -> Behaviour:
    """The behaviour of an action (canonical name or alias)."""
    return BEHAVIOURS[registry.get(name).name]


def reads_for(actions: Iterable[str]) -> frozenset[Read]:
    """Every per-user read the given actions need."""
    needed: set[Read] = set()
    for name in actions:
        needed |= behaviour(name).reads
    return frozenset(needed)

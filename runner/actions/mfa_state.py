"""`set_per_user_mfa`: the legacy per-user MFA state (beta `authentication/requirements`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Change, ChangeKind, Permissions, Read, Step
from runner.state import UserState

BETA_WARNING = "per-user MFA is a beta API of Graph"


class SetPerUserMfa:
    """The behaviour of `set_per_user_mfa`."""

    name = "set_per_user_mfa"
    reads = frozenset({Read.REQUIREMENTS})
    permissions = Permissions(
        app=(p.WRITE_MFA_REQUIREMENTS,), delegated=(p.WRITE_MFA_REQUIREMENTS,)
    )
    repeatable = True

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """No-op when the state is already the wanted one."""
        wanted = str(options["state"])
        if state.per_user_mfa == wanted:
            return Change(
                action=self.name, kind=ChangeKind.NOOP, summary=f"no-op: already {wanted}"
            )
        current = state.per_user_mfa or "unknown (not readable)"
        return Change(
            action=self.name,
            kind=ChangeKind.CHANGE,
            summary=f"will set per-user MFA from {current} to {wanted}",
            warnings=(BETA_WARNING,),
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """One beta PATCH, unless already so."""
        wanted = str(options["state"])
        if state.per_user_mfa == wanted:
            return ()
        return (
            Step(
                key="requirements",
                method="PATCH",
                path=f"/users/{state.id}/authentication/requirements",
                version="beta",
                body={"perUserMfaState": wanted},
                done=frozenset({204}),
                label=f"PATCH perUserMfaState={wanted}",
            ),
        )

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """The beta GET shows the wanted state."""
        return state.per_user_mfa == str(options["state"])

"""`reset_password`: a temporary password the user must change at next sign-in.

App-only tokens PATCH `passwordProfile` with a password generated locally (the only path
Graph allows an application); delegated tokens call the resetPassword operation (202 +
Location, polled until it ends). Not repeatable: a second call sets another password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Change, ChangeKind, Permissions, Read, Secret, Step
from runner.state import UserState, parse_time

PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"  # noqa: S105 - Graph's method id
SYNCED_WARNING = (
    "synced from on-premises AD: Graph refuses password writes for it "
    "(reset it in on-premises AD instead)"
)


class ResetPassword:
    """The behaviour of `reset_password`."""

    name = "reset_password"
    reads: frozenset[Read] = frozenset()
    permissions = Permissions(app=(p.WRITE_PASSWORD_PROFILE,), delegated=(p.WRITE_METHODS,))
    repeatable = False

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """Always a change: a new password is set whatever the current one is."""
        mfa = (
            " (MFA required before the change)" if options.get("require_mfa_before_change") else ""
        )
        warnings = (SYNCED_WARNING,) if state.synced else ()
        return Change(
            action=self.name,
            kind=ChangeKind.CHANGE,
            summary=(
                f"will set a generated temporary password of {options.get('length', 20)} "
                f"characters, to be changed at next sign-in{mfa}"
            ),
            warnings=warnings,
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """One request; the engine puts the generated password into the body at send time."""
        if delegated:
            return (
                Step(
                    key="reset",
                    method="POST",
                    path=f"/users/{state.id}/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword",
                    body={},
                    done=frozenset({202}),
                    secret=Secret.PASSWORD,
                    poll=True,
                    label="resetPassword operation",
                ),
            )
        profile: dict[str, Any] = {"forceChangePasswordNextSignIn": True}
        if options.get("require_mfa_before_change"):
            profile["forceChangePasswordNextSignInWithMfa"] = True
        return (
            Step(
                key="reset",
                method="PATCH",
                path=f"/users/{state.id}",
                body={"passwordProfile": profile},
                done=frozenset({204}),
                secret=Secret.PASSWORD,
                label="PATCH passwordProfile",
            ),
        )

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """`lastPasswordChangeDateTime` at or after the intent (Graph gives whole seconds)."""
        changed = parse_time(state.last_password_change)
        return changed is not None and changed >= since.replace(microsecond=0)

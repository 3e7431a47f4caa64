"""`revoke_sessions` (alias `revoke_mfa_sessions`): revoke every sign-in session.

Graph has no call that clears only remembered MFA; `revokeSignInSessions` revokes all
refresh tokens and session cookies, a superset, and the plan says so. Graph returns 200
`{value: true}` (documented as 204); both are accepted. It does not revoke the sessions of
external (B2B) users, so for guests the action is marked not applicable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Change, ChangeKind, Permissions, Read, Step
from runner.state import UserState, parse_time

SUPERSET_NOTE = "Graph has no call for MFA sessions only: this revokes every sign-in session"
GUEST_REASON = (
    "not applicable: Graph does not revoke the sessions of external (B2B) users; "
    "revoke them in the user's home tenant"
)


class RevokeSessions:
    """The behaviour of `revoke_sessions`."""

    name = "revoke_sessions"
    reads: frozenset[Read] = frozenset()
    permissions = Permissions(app=(p.REVOKE_SESSIONS,), delegated=(p.REVOKE_SESSIONS,))
    repeatable = True

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """A change for members; not applicable for guests."""
        if state.is_guest:
            return Change(action=self.name, kind=ChangeKind.NOT_APPLICABLE, summary=GUEST_REASON)
        return Change(
            action=self.name,
            kind=ChangeKind.CHANGE,
            summary="will revoke all sign-in sessions and refresh tokens",
            warnings=(SUPERSET_NOTE,),
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """One POST with an empty JSON body."""
        return (
            Step(
                key="revoke",
                method="POST",
                path=f"/users/{state.id}/revokeSignInSessions",
                body={},
                done=frozenset({200, 204}),
                label="revokeSignInSessions",
            ),
        )

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """`signInSessionsValidFromDateTime` at or after the intent."""
        valid_from = parse_time(state.sessions_valid_from)
        return valid_from is not None and valid_from >= since.replace(microsecond=0)

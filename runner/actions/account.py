"""`disable_account` and `enable_account`: PATCH `accountEnabled`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Change, ChangeKind, Permissions, Read, Step
from runner.state import UserState

SYNCED_WARNING = (
    "synced from on-premises AD: Graph refuses accountEnabled writes for it "
    "(disable it in on-premises AD instead)"
)


class SetAccountEnabled:
    """The behaviour of `disable_account` (enabled=False) and `enable_account` (True)."""

    reads: frozenset[Read] = frozenset()
    permissions = Permissions(app=(p.WRITE_ACCOUNT_ENABLED,), delegated=(p.WRITE_ACCOUNT_ENABLED,))
    repeatable = True

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.name = "enable_account" if enabled else "disable_account"
        self._word = "enabled" if enabled else "disabled"

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """No-op when the account already has the wanted state."""
        if state.account_enabled is self.enabled:
            return Change(
                action=self.name, kind=ChangeKind.NOOP, summary=f"no-op: already {self._word}"
            )
        verb = "enable" if self.enabled else "disable"
        return Change(
            action=self.name,
            kind=ChangeKind.CHANGE,
            summary=f"will {verb} sign-in (accountEnabled: {str(self.enabled).lower()})",
            warnings=(SYNCED_WARNING,) if state.synced else (),
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """Nothing when already so, else one PATCH."""
        if state.account_enabled is self.enabled:
            return ()
        return (
            Step(
                key="account",
                method="PATCH",
                path=f"/users/{state.id}",
                body={"accountEnabled": self.enabled},
                done=frozenset({204}),
                label=f"PATCH accountEnabled={str(self.enabled).lower()}",
            ),
        )

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """`accountEnabled` has the wanted value."""
        return state.account_enabled is self.enabled

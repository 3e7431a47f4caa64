"""Reading target users' state during apply: drift checks, reconciliation, verification.

Identity and the details the actions need are read in batches of 20; privileged-role
membership comes from the role map read once at the start of the run. A user that no longer
exists reads as None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runner.actions.base import Read as NeededRead
from runner.engine.reader import Read, Reader
from runner.resolve import USER_SELECT, read_details, user_state_from
from runner.state import UserState


class StateReader:
    """Fresh `UserState`s for users by object id."""

    def __init__(
        self,
        reader: Reader,
        *,
        roles: Mapping[str, tuple[str, ...]],
        beta_methods: bool,
    ) -> None:
        self.reader = reader
        self.roles = roles
        self.beta_methods = beta_methods
        self.warnings: list[str] = []

    def read(
        self, user_ids: Sequence[str], needed: frozenset[NeededRead]
    ) -> dict[str, UserState | None]:
        """Each user's state now (None: the user no longer exists)."""
        answers = self.reader.run(
            [
                Read(id=user_id, url=f"/users/{user_id}?$select={USER_SELECT}")
                for user_id in user_ids
            ]
        )
        states: dict[str, UserState | None] = {}
        present: list[UserState] = []
        for user_id in user_ids:
            response = answers[user_id]
            if response.status == 200 and isinstance(response.body, dict):
                state = user_state_from(response.body, self.roles)
                present.append(state)
                states[user_id] = state
            elif response.status == 404:
                states[user_id] = None
            else:
                reason = response.error.describe() if response.error else str(response.status)
                msg = f"cannot read user {user_id}: {reason}"
                raise ReadRefusedError(msg)
        if needed and present:
            detailed = read_details(
                self.reader,
                present,
                needed,
                beta_methods=self.beta_methods,
                warnings=self.warnings,
            )
            states.update(detailed)
        return states


class ReadRefusedError(Exception):
    """Graph refused to read a target (403 and the like): the run cannot check drift."""

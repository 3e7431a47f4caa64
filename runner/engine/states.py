"""Reading target users' state during apply: drift checks, reconciliation, verification.

Identity and the details the actions need are read in batches of 20; privileged-role
membership comes from the role map read once at the start of the run. A user that no longer
exists reads as None; a user Graph refuses to read (403, as for a target protected by a
restricted administrative unit) reads as `Refused`, and that target's items fail with Graph's
code and message while the run goes on. When Graph refuses every read of several users at
once, the app or the signed-in user has lost the permission to read users: `AuthError` (exit 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.actions.base import Read as NeededRead
from runner.engine.reader import Read, Reader
from runner.errors import AuthError
from runner.graph.facts import GraphResponse
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
        resume: str = "entra-bulk apply --resume RUN_DIR",
    ) -> None:
        self.reader = reader
        self.resume = resume  # the command that continues the run (named in an error's hint)
        self.roles = roles
        self.beta_methods = beta_methods
        self.warnings: list[str] = []

    def read(
        self, user_ids: Sequence[str], needed: frozenset[NeededRead]
    ) -> dict[str, UserState | Refused | None]:
        """Each user's state now (None: the user no longer exists; `Refused`: Graph would not
        let us read it)."""
        answers = self.reader.run(
            [
                Read(id=user_id, url=f"/users/{user_id}?$select={USER_SELECT}")
                for user_id in user_ids
            ]
        )
        states: dict[str, UserState | Refused | None] = {}
        present: list[UserState] = []
        refused: list[Refused] = []
        for user_id in user_ids:
            response = answers[user_id]
            if response.status == 200 and isinstance(response.body, dict):
                state = user_state_from(response.body, self.roles)
                present.append(state)
                states[user_id] = state
            elif response.status == 404:
                states[user_id] = None
            else:
                refusal = Refused.of(response)
                refused.append(refusal)
                states[user_id] = refusal
        if len(refused) >= 2 and len(refused) == len(user_ids) and not self._can_list_users():
            msg = (
                f"Graph refused to read all {len(user_ids)} users asked for "
                f"(e.g. {refused[0].describe()})"
            )
            hint = f"check that the app (or you) may still read users, then `{self.resume}`"
            raise AuthError(msg, hint=hint)
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

    def _can_list_users(self) -> bool:
        """Whether Graph still lets us read users at all: when every user asked for is refused,
        lost permission and users we may not read (a restricted administrative unit) look the
        same; a one-user list tells them apart."""
        probe = self.reader.run([Read(id="probe", url="/users?$top=1&$select=id")])["probe"]
        return probe.status == 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Graph refused to read a user (403 and the like): its answer, for that user's items."""

    status: int
    code: str | None = None
    message: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, response: GraphResponse) -> Refused:
        """The refusal in `response`."""
        error = response.error
        return cls(
            status=response.status,
            code=error.code if error else None,
            message=error.message if error else None,
            request_id=response.request_id,
        )

    def describe(self) -> str:
        """`403 Authorization_RequestDenied: Insufficient privileges ...`."""
        return f"{self.status} {self.code or ''}: {self.message or ''}".strip(" :")

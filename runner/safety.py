"""Safety rails (pure): who must never be touched, and how many targets a plan may have.

A refused target is never dropped silently: it stays in the plan with the reason, and every
one of its actions is `refused`. Rails, in the order they are checked:

1. protected users (the plan's and the profile's; by UPN or object id);
2. members of protected groups (the plan's and the profile's);
3. break-glass accounts by name (`breakglass`, `break-glass`, ... in the UPN);
4. the signed-in administrator (a plan must not lock out the person running it);
5. holders of privileged directory roles, unless `allow_privileged` lists their object id.

`max_targets` caps the number of targets a plan may act on (refused targets do not count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runner.state import UserState

BREAK_GLASS = re.compile(r"break[-._]?glass", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rails:
    """Everything the rails need to know, gathered before they run."""

    protected_users: frozenset[str]  # lower-case UPNs and object ids
    protected_group_members: Mapping[str, str]  # user id → protected group name
    allow_privileged: frozenset[str]  # lower-case object ids
    caller_id: str | None = None  # the signed-in user's object id (delegated tokens)
    max_targets: int | None = None


def build_rails(
    *,
    plan_users: Iterable[str],
    profile_users: Iterable[str],
    group_members: Mapping[str, str],
    allow_privileged: Iterable[str],
    caller_id: str | None,
    max_targets: int | None,
) -> Rails:
    """Rails from the plan's safety section and the profile."""
    return Rails(
        protected_users=frozenset(value.lower() for value in (*plan_users, *profile_users)),
        protected_group_members=dict(group_members),
        allow_privileged=frozenset(value.lower() for value in allow_privileged),
        caller_id=caller_id.lower() if caller_id else None,
        max_targets=max_targets,
    )


def refusal(state: UserState, rails: Rails) -> str | None:
    """Why this target must not be touched, or None."""
    if state.id.lower() in rails.protected_users or state.upn.lower() in rails.protected_users:
        return "protected user"
    group = rails.protected_group_members.get(state.id.lower())
    if group is not None:
        return f"member of protected group {group!r}"
    if BREAK_GLASS.search(state.upn.split("@", 1)[0]):
        return "break-glass account (by its name)"
    if rails.caller_id is not None and state.id.lower() == rails.caller_id:
        return "the signed-in administrator (a plan must not lock out its own operator)"
    if state.privileged_roles and state.id.lower() not in rails.allow_privileged:
        roles = ", ".join(state.privileged_roles)
        return f"privileged role {roles} (allow it by object id in safety.allow_privileged)"
    return None


def over_limit(count: int, rails: Rails) -> str | None:
    """A message when `count` targets exceed `max_targets`, else None."""
    if rails.max_targets is not None and count > rails.max_targets:
        return (
            f"the plan would act on {count} targets, more than its safety.max_targets "
            f"of {rails.max_targets}"
        )
    return None

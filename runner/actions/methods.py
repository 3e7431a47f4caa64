"""Actions on authentication methods: re-registration, removal by kind, temporary access pass.

`require_mfa_reregistration` is what Graph allows in place of the portal's button (no API
exists): delete the user's MFA methods (by default the portal's set), the default method
last, since Graph refuses to delete the default while other MFA methods remain. Deletions
are eventually consistent; a 404 means the method is already gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from runner.actions import permissions as p
from runner.actions.base import Change, ChangeKind, Permissions, Read, Secret, Step
from runner.graph.facts import GraphFailure
from runner.state import COLLECTION, Method, UserState, parse_time

DEFAULT_REFUSAL = "matches the user's current default authentication method"
PORTAL_NOTE = (
    "Graph has no 'require re-register MFA' call: the methods are deleted, and the user "
    "registers new ones at next sign-in"
)
HARDWARE_NOTE = "the portal deactivates hardware OATH tokens; Graph unassigns them (beta)"
UNREADABLE = "methods could not be read (permission UserAuthenticationMethod.Read.All)"

# Phases: other methods, then the mobile phone (an alternate mobile needs it), then default.
_PHASE_OTHER, _PHASE_MOBILE, _PHASE_DEFAULT = 0, 1, 2


def is_default_refusal(failure: GraphFailure | None) -> bool:
    """True for Graph's 400 on deleting the default method while others remain."""
    return failure is not None and failure.status == 400 and DEFAULT_REFUSAL in failure.message


def _targeted(state: UserState, kinds: Sequence[str]) -> list[Method]:
    return [m for m in state.methods or () if m.kind in kinds and m.kind in COLLECTION]


def _deletion_steps(state: UserState, kinds: Sequence[str]) -> tuple[Step, ...]:
    default = state.default_method()
    steps = []
    for method in _targeted(state, kinds):
        collection, version = COLLECTION[method.kind]
        if default is not None and method.id == default.id:
            phase = _PHASE_DEFAULT
        elif method.kind == "phone" and method.phone_type == "mobile":
            phase = _PHASE_MOBILE
        else:
            phase = _PHASE_OTHER
        steps.append(
            Step(
                key=f"delete:{method.kind}:{method.id}",
                method="DELETE",
                path=f"/users/{state.id}/authentication/{collection}/{method.id}",
                version=version,
                phase=phase,
                done=frozenset({204, 404}),
                label=f"delete {method.label}",
            )
        )
    return tuple(sorted(steps, key=lambda step: step.phase))


def _describe(methods: Sequence[Method]) -> str:
    labels = ", ".join(method.label for method in methods)
    noun = "method" if len(methods) == 1 else "methods"
    return f"will delete {len(methods)} {noun}: {labels}"


class DeleteMethods:
    """`require_mfa_reregistration` (portal's kinds by default) and `remove_auth_methods`."""

    reads = frozenset({Read.METHODS, Read.SIGN_IN_PREFERENCES})
    permissions = Permissions(app=(p.WRITE_METHODS,), delegated=(p.WRITE_METHODS,))
    repeatable = True

    def __init__(self, *, name: str) -> None:
        self.name = name
        self._reregistration = name == "require_mfa_reregistration"

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """The methods that will be deleted, default last; no-op when there are none."""
        kinds = tuple(options["method_types"])
        if state.methods is None:
            return Change(
                action=self.name,
                kind=ChangeKind.CHANGE,
                summary=f"will delete every method of kinds {', '.join(kinds)} found at apply time",
                warnings=(UNREADABLE,),
            )
        steps = _deletion_steps(state, kinds)
        targeted = {m.id: m for m in _targeted(state, kinds)}
        methods = [targeted[step.key.rsplit(":", 1)[1]] for step in steps]
        if not methods:
            return Change(
                action=self.name,
                kind=ChangeKind.NOOP,
                summary=f"no-op: no methods of kinds {', '.join(kinds)}",
            )
        warnings: list[str] = []
        if self._reregistration:
            warnings.append(PORTAL_NOTE)
        if any(m.kind == "hardwareOath" for m in methods):
            warnings.append(HARDWARE_NOTE)
        summary = _describe(methods)
        default = state.default_method()
        if default is not None and default.id in targeted:
            summary += f" (default {default.label} last)"
        return Change(
            action=self.name, kind=ChangeKind.CHANGE, summary=summary, warnings=tuple(warnings)
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """One DELETE per method, in phases: others, the mobile phone, the default."""
        return _deletion_steps(state, tuple(options["method_types"]))

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """No method of those kinds registered before the intent remains."""
        if state.methods is None:
            return False
        for method in _targeted(state, tuple(options["method_types"])):
            created = parse_time(method.created)
            if created is None or created < since.replace(microsecond=0):
                return False
        return True


class CreateAccessPass:
    """`create_temporary_access_pass`: Graph generates the pass and returns it once."""

    name = "create_temporary_access_pass"
    reads = frozenset({Read.METHODS})
    permissions = Permissions(app=(p.WRITE_TAP,), delegated=(p.WRITE_TAP,))
    repeatable = False

    def diff(self, state: UserState, options: Mapping[str, Any]) -> Change:
        """A change; says when it replaces a pass the user already has."""
        lifetime = int(options.get("lifetime_minutes", 60))
        once = ", usable once" if options.get("usable_once", True) else ", reusable"
        start = f", valid from {options['start_time']}" if options.get("start_time") else ""
        existing = any(m.kind == "temporaryAccessPass" for m in state.methods or ())
        replaces = " (replaces the existing pass)" if existing else ""
        return Change(
            action=self.name,
            kind=ChangeKind.CHANGE,
            summary=(
                f"will create a temporary access pass for {lifetime} minutes{once}{start}{replaces}"
            ),
        )

    def steps(
        self, state: UserState, options: Mapping[str, Any], *, delegated: bool
    ) -> tuple[Step, ...]:
        """One POST; Graph's answer carries the pass, written to secrets.csv at once."""
        body: dict[str, Any] = {
            "lifetimeInMinutes": int(options.get("lifetime_minutes", 60)),
            "isUsableOnce": bool(options.get("usable_once", True)),
        }
        if options.get("start_time"):
            body["startDateTime"] = str(options["start_time"])
        return (
            Step(
                key="tap",
                method="POST",
                path=f"/users/{state.id}/authentication/temporaryAccessPassMethods",
                body=body,
                done=frozenset({201}),
                secret=Secret.ACCESS_PASS,
                label="create temporary access pass",
            ),
        )

    def verified(self, state: UserState, options: Mapping[str, Any], *, since: dt.datetime) -> bool:
        """A pass created at or after the intent exists."""
        for method in state.methods or ():
            created = parse_time(method.created)
            if (
                method.kind == "temporaryAccessPass"
                and created
                and created >= since.replace(microsecond=0)
            ):
                return True
        return False

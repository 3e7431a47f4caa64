"""The canonical plan: frozen dataclasses, one factory (`build`) and the canonical JSON.

Whatever form a plan was written in (YAML, CSV with command-line settings, YAML naming a CSV
in `targets_from`), `build` turns the validated raw data into the same `Plan`: action names
canonical, options with their defaults, UPNs and object ids normalised, duplicates collapsed.
Where each target came from (`SourceRef`) travels with it but takes no part in equality or in
`canonical_json`, so that reformatting a file never changes the plan's digest. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from runner import identity
from runner.actions import registry

PLAN_VERSION = 1

OptionValue = bool | int | float | str | tuple[str, ...]


class TargetKind(StrEnum):
    """How a target names users: one user, a group's members, or a filter query."""

    USER = "user"
    GROUP = "group"
    QUERY = "query"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRef:
    """Where something was written: file, line, column (None for CSV files)."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSelector:
    """One entry of `targets`: who, and optionally which actions instead of the defaults."""

    kind: TargetKind
    value: str
    actions: tuple[str, ...] | None = None
    note: str | None = None
    ticket: str | None = None
    source: SourceRef | None = field(default=None, compare=False)

    @property
    def is_object_id(self) -> bool:
        """True when a user or group is given by object id rather than UPN or name."""
        return self.kind is not TargetKind.QUERY and identity.is_guid(self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Safety:
    """The plan's safety rails (product-spec section 4); defaults equal the schema's."""

    max_targets: int | None = None
    protected_users: tuple[str, ...] = ()
    protected_groups: tuple[str, ...] = ()
    allow_privileged: tuple[str, ...] = ()
    required_approvals: int = 1
    plan_ttl_hours: int = 24
    halt_on_failure_rate: float = 0.05
    canary: int = 10
    allowed_signers: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A validated plan, the same whatever file form it came from."""

    version: int = PLAN_VERSION
    name: str
    ticket: str | None = None
    description: str | None = None
    actions: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, OptionValue]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    targets: tuple[TargetSelector, ...]
    safety: Safety = field(default_factory=Safety)
    source: SourceRef | None = field(default=None, compare=False)

    def actions_for(self, target: TargetSelector) -> tuple[str, ...]:
        """The actions a target gets, in order: its own list, else the plan's."""
        return target.actions if target.actions is not None else self.actions

    def used_actions(self) -> tuple[str, ...]:
        """Every action some target gets, in registry order."""
        used = set(self.actions)
        for target in self.targets:
            used.update(self.actions_for(target))
        return tuple(name for name in registry.names() if name in used)


def canonical_actions(names: Sequence[str]) -> tuple[str, ...]:
    """Action names resolved to their canonical form (aliases replaced)."""
    return tuple(registry.get(name).name for name in names)


def _invalid(what: str) -> ValueError:
    return ValueError(f"build() needs a validated plan: {what}")


def _normalised(kind: TargetKind, raw: Any) -> str:
    check = {
        TargetKind.USER: identity.check_user,
        TargetKind.GROUP: identity.check_group,
        TargetKind.QUERY: identity.check_query,
    }[kind]
    checked = check(raw)
    if checked.value is None:
        msg = f"{kind} {raw!a} is not valid"
        raise _invalid(msg)
    return checked.value


def _target(raw: Mapping[str, Any], source: SourceRef | None) -> TargetSelector:
    kinds = [kind for kind in TargetKind if kind.value in raw]
    if len(kinds) != 1:
        msg = "a target names exactly one of user, group or query"
        raise _invalid(msg)
    kind = kinds[0]
    actions = raw.get("actions")
    return TargetSelector(
        kind=kind,
        value=_normalised(kind, raw[kind.value]),
        actions=None if actions is None else canonical_actions(actions),
        note=raw.get("note"),
        ticket=raw.get("ticket"),
        source=source,
    )


def _unique(values: Sequence[str], key: Any) -> tuple[str, ...]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if key(value) not in seen:
            seen.add(key(value))
            kept.append(value)
    return tuple(kept)


def _safety(raw: Mapping[str, Any]) -> Safety:
    users = [_normalised(TargetKind.USER, value) for value in raw.get("protected_users", ())]
    groups = [_normalised(TargetKind.GROUP, value) for value in raw.get("protected_groups", ())]
    privileged = [
        str(value).strip(identity.ASCII_WHITESPACE).lower()
        for value in raw.get("allow_privileged", ())
    ]
    defaults = Safety()
    return Safety(
        max_targets=raw.get("max_targets"),
        protected_users=_unique(users, str.casefold),
        protected_groups=_unique(groups, str.casefold),
        allow_privileged=_unique(privileged, str),
        required_approvals=raw.get("required_approvals", defaults.required_approvals),
        plan_ttl_hours=raw.get("plan_ttl_hours", defaults.plan_ttl_hours),
        halt_on_failure_rate=float(raw.get("halt_on_failure_rate", defaults.halt_on_failure_rate)),
        canary=raw.get("canary", defaults.canary),
        allowed_signers=raw.get("allowed_signers"),
    )


def build(
    data: Mapping[str, Any],
    *,
    target_sources: Sequence[SourceRef | None] = (),
    source: SourceRef | None = None,
) -> Plan:
    """The `Plan` of validated raw data (`validate.check` first; invalid data raises).

    `target_sources[i]` says where `data["targets"][i]` was written. Targets that are the
    same (UPN case, repeated entries with the same actions) are kept once, at their first
    place; validation has already warned about them.
    """
    if data.get("version") != PLAN_VERSION:
        msg = f"version {data.get('version')!r}"
        raise _invalid(msg)
    targets: list[TargetSelector] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("targets") or ()):
        where = target_sources[index] if index < len(target_sources) else None
        target = _target(raw, where)
        key = identity.dedupe_key(target.kind, target.value)
        if key not in seen:
            seen.add(key)
            targets.append(target)
    plan_actions = canonical_actions(data.get("actions") or ())
    used = set(plan_actions)
    for target in targets:
        used.update(target.actions or ())
    given = data.get("options") or {}
    options = {
        name: registry.with_defaults(name, given.get(name))
        for name in registry.names()
        if name in used
    }
    return Plan(
        version=PLAN_VERSION,
        name=data["name"],
        ticket=data.get("ticket"),
        description=data.get("description"),
        actions=plan_actions,
        options=MappingProxyType(options),
        targets=tuple(targets),
        safety=_safety(data.get("safety") or {}),
        source=source,
    )


def to_data(plan: Plan) -> dict[str, Any]:
    """The plan as JSON data, without source positions (the content a digest covers)."""
    safety = plan.safety
    return {
        "version": plan.version,
        "name": plan.name,
        "ticket": plan.ticket,
        "description": plan.description,
        "actions": list(plan.actions),
        "options": {
            name: {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in opts.items()
            }
            for name, opts in plan.options.items()
        },
        "targets": [
            {
                "kind": str(target.kind),
                "value": target.value,
                "actions": None if target.actions is None else list(target.actions),
                "note": target.note,
                "ticket": target.ticket,
            }
            for target in plan.targets
        ],
        "safety": {
            "max_targets": safety.max_targets,
            "protected_users": list(safety.protected_users),
            "protected_groups": list(safety.protected_groups),
            "allow_privileged": list(safety.allow_privileged),
            "required_approvals": safety.required_approvals,
            "plan_ttl_hours": safety.plan_ttl_hours,
            "halt_on_failure_rate": safety.halt_on_failure_rate,
            "canary": safety.canary,
            "allowed_signers": safety.allowed_signers,
        },
    }


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON of any JSON data: sorted keys, no insignificant whitespace, UTF-8."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def canonical_json(plan: Plan) -> bytes:
    """The plan's canonical JSON (product-spec section 6): equal plans, equal bytes."""
    return canonical_bytes(to_data(plan))

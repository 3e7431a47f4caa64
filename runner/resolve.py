"""From a plan's selectors to target users with their current state (read-only).

Users by UPN or object id, groups expanded to their transitive user members, OData queries;
read in batches of 20 with `$select` of only what is needed. Privileged-role membership is
read once per role, not per user. Not-found targets are reported with the file and line they
came from; the same user reached twice (UPN and id, or through a group) is one target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from runner.actions.base import Read as NeededRead
from runner.engine.reader import PageError, Read, Reader
from runner.errors import RefusedError
from runner.graph.facts import GraphResponse
from runner.graph.paths import is_guid, odata_string, user_path
from runner.plan import Plan, TargetKind, TargetSelector
from runner.state import Method, UserState

USER_SELECT = (
    "id,userPrincipalName,displayName,userType,accountEnabled,onPremisesSyncEnabled,"
    "lastPasswordChangeDateTime,signInSessionsValidFromDateTime"
)
BETA_ONLY_KINDS = frozenset({"hardwareOath", "passwordlessMicrosoftAuthenticator"})
# Reads are run this many at a time and their answers turned into states before the next
# slice: 100,000 answers held at once cost ~170 MB.
READ_SLICE = 2000
_ADVANCED = re.compile(r"\b(ne|not|endswith)\b|\$count", re.IGNORECASE)

# Built-in roles Microsoft marks `isPrivileged`, used when roleDefinitions cannot be read.
PRIVILEGED_TEMPLATES = frozenset(
    {
        "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
        "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",  # Privileged Authentication Administrator
        "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",  # Authentication Administrator
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
        "966707d0-3269-4727-9be2-8c3a10f19b9d",  # Password Administrator
        "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",  # Conditional Access Administrator
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
        "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
        "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
        "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",  # Security Operator
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",  # Hybrid Identity Administrator
        "3a2c62db-5318-420d-8d74-23affee5d9d5",  # Intune Administrator
        "9360feb5-f418-4baa-8175-e2a00bac4301",  # Directory Writers
        "8329153b-31d0-4727-b945-745eb3bc5f31",  # Domain Name Administrator
        "be2f45a1-457d-42af-a067-6ec1fa63bc45",  # External Identity Provider Administrator
        "7698a772-787b-4ac8-901f-60d6b08affd2",  # Cloud Device Administrator
        "cf1c38e5-3621-4004-a7cb-879624dced7c",  # Application Developer
    }
)

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A resolved user, the selector that named it first, and the actions it gets."""

    state: UserState
    selector: TargetSelector
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Unresolved:
    """A selector that named nobody, and why."""

    selector: TargetSelector
    reason: str

    def describe(self) -> str:
        """`plan.yaml:12: user bob@contoso.com: not found in the tenant`."""
        where = f"{self.selector.source}: " if self.selector.source else ""
        return f"{where}{self.selector.kind} {self.selector.value}: {self.reason}"


@dataclass(slots=True, kw_only=True)
class Resolution:
    """Who a plan targets, what could not be resolved, and what was noticed on the way."""

    targets: list[Target] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def user_state_from(item: Mapping[str, object], roles: Mapping[str, tuple[str, ...]]) -> UserState:
    """A `UserState` (identity only) from a Graph user object."""
    user_id = str(item.get("id", "")).lower()
    return UserState(
        id=user_id,
        upn=str(item.get("userPrincipalName", "")),
        display_name=str(item.get("displayName") or ""),
        user_type=str(item.get("userType") or "Member"),
        account_enabled=item.get("accountEnabled")
        if isinstance(item.get("accountEnabled"), bool)
        else None,  # type: ignore[arg-type]
        synced=bool(item.get("onPremisesSyncEnabled")),
        privileged_roles=roles.get(user_id, ()),
        last_password_change=_text(item.get("lastPasswordChangeDateTime")),
        sessions_valid_from=_text(item.get("signInSessionsValidFromDateTime")),
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def verified_domains(reader: Reader) -> frozenset[str] | None:
    """The tenant's verified domains (lower case), or None when they cannot be read."""
    answers = reader.run([Read(id="org", url="/organization?$select=verifiedDomains")])
    response = answers["org"]
    if response.status != 200 or not isinstance(response.body, dict):
        return None
    domains: set[str] = set()
    for org in response.body.get("value", []):
        for domain in org.get("verifiedDomains", []) if isinstance(org, dict) else []:
            if isinstance(domain, dict) and domain.get("name"):
                domains.add(str(domain["name"]).lower())
    return frozenset(domains)


def privileged_roles(reader: Reader, warnings: list[str]) -> dict[str, tuple[str, ...]]:
    """User id → names of privileged directory roles held (members of role groups too)."""
    privileged = set(PRIVILEGED_TEMPLATES)
    try:
        definitions = list(
            reader.pages(
                "/roleManagement/directory/roleDefinitions",
                params={"$filter": "isPrivileged eq true", "$select": "id,templateId,displayName"},
            )
        )
        privileged = {str(d.get("templateId") or d.get("id")).lower() for d in definitions}
    except PageError:
        warnings.append(
            "could not read which roles are privileged (roleDefinitions); "
            "using Microsoft's built-in list"
        )
    holders: dict[str, list[str]] = {}
    try:
        for role in reader.pages("/directoryRoles"):
            if str(role.get("roleTemplateId", "")).lower() not in privileged:
                continue
            name = str(role.get("displayName"))
            for member in reader.pages(
                f"/directoryRoles/{role['id']}/members", params={"$select": "id"}
            ):
                member_type = str(member.get("@odata.type", ""))
                if member_type.endswith("group"):
                    users = _group_user_ids(reader, str(member["id"]))
                elif member_type.endswith("user") or not member_type:
                    users = [str(member["id"]).lower()]
                else:
                    users = []
                for user_id in users:
                    holders.setdefault(user_id, []).append(name)
    except PageError as exc:
        # Fail closed: without the role holders, an administrator would be planned as anyone.
        message = (
            f"could not read the holders of privileged directory roles ({exc}): "
            "privileged targets cannot be told apart, so nothing is planned"
        )
        raise RefusedError(
            message, hint="grant RoleManagement.Read.Directory, or try again later"
        ) from None
    return {user: tuple(sorted(set(names))) for user, names in holders.items()}


def _group_user_ids(reader: Reader, group_id: str) -> list[str]:
    return [
        str(item["id"]).lower()
        for item in reader.pages(
            f"/groups/{group_id}/transitiveMembers/microsoft.graph.user",
            params={"$select": "id", "$top": "999"},
        )
    ]


def find_group(reader: Reader, value: str) -> tuple[str | None, str]:
    """(group id, reason): by object id or by display name (which must be unique)."""
    if is_guid(value):
        answers = reader.run([Read(id="g", url=f"/groups/{value}?$select=id,displayName")])
        if answers["g"].status == 200:
            return value.lower(), ""
        return None, _reason(answers["g"], "group")
    matches = list(
        reader.pages(
            "/groups",
            params={
                "$filter": f"displayName eq {odata_string(value)}",
                "$select": "id,displayName",
            },
        )
    )
    if not matches:
        return None, "no group has this name"
    if len(matches) > 1:
        return None, f"{len(matches)} groups have this name; name the group by its object id"
    return str(matches[0]["id"]).lower(), ""


def protected_group_members(reader: Reader, names: Iterable[str]) -> dict[str, str]:
    """User id → the protected group that makes it protected."""
    members: dict[str, str] = {}
    for name in names:
        try:
            group_id, reason = find_group(reader, name)
            if group_id is not None:
                for user_id in _group_user_ids(reader, group_id):
                    members.setdefault(user_id, name)
                continue
        except PageError as exc:
            reason = f"Graph answered {exc}"
        # Fail closed: a misspelt or renamed protected group would protect nobody.
        message = f"protected group {name!r} cannot be read ({reason}): nothing is planned"
        raise RefusedError(
            message,
            hint="correct the name in the plan's or the profile's protected_groups "
            "(or name the group by its object id)",
        )
    return members


def _reason(response: GraphResponse, what: str) -> str:
    if response.status == 404:
        return "not found in the tenant"
    if response.error is not None:
        return f"Graph answered {response.error.describe()}"
    return f"Graph answered {response.status} for this {what}"


def resolve(
    plan: Plan,
    reader: Reader,
    *,
    roles: Mapping[str, tuple[str, ...]],
    domains: frozenset[str] | None,
    resolution: Resolution | None = None,
) -> Resolution:
    """Every selector of the plan turned into users (identity only; see `read_details`)."""
    result = resolution or Resolution()
    found: dict[str, Target] = {}
    # Every selector that reached a user, for the overlaps settled once all are resolved.
    named: dict[str, list[TargetSelector]] = {}

    def add(item: Mapping[str, object], selector: TargetSelector) -> None:
        state = user_state_from(item, roles)
        if state.id in found:
            named[state.id].append(selector)
            return
        named[state.id] = [selector]
        found[state.id] = Target(state=state, selector=selector, actions=plan.actions_for(selector))

    users = [s for s in plan.targets if s.kind is TargetKind.USER]
    checked: list[TargetSelector] = []
    for selector in users:
        domain = selector.value.rsplit("@", 1)[-1].lower() if "@" in selector.value else None
        if domain is not None and domains is not None and domain not in domains:
            result.unresolved.append(
                Unresolved(selector=selector, reason=f"domain {domain} is not a tenant domain")
            )
        else:
            checked.append(selector)
    for start in range(0, len(checked), READ_SLICE):
        part = checked[start : start + READ_SLICE]
        answers = reader.run(
            [
                Read(id=str(index), url=f"{user_path(selector.value)}?$select={USER_SELECT}")
                for index, selector in enumerate(part)
            ]
        )
        for index, selector in enumerate(part):
            response = answers[str(index)]
            if response.status == 200 and isinstance(response.body, dict):
                add(response.body, selector)
            else:
                result.unresolved.append(
                    Unresolved(selector=selector, reason=_reason(response, "user"))
                )
    for selector in plan.targets:
        if selector.kind is TargetKind.GROUP:
            group_id, reason = find_group(reader, selector.value)
            if group_id is None:
                result.unresolved.append(Unresolved(selector=selector, reason=reason))
                continue
            try:
                members = list(
                    reader.pages(
                        f"/groups/{group_id}/transitiveMembers/microsoft.graph.user",
                        params={"$select": USER_SELECT, "$top": "999"},
                    )
                )
            except PageError as exc:
                # None of its members is planned: half a group would be worse than none.
                result.unresolved.append(
                    Unresolved(selector=selector, reason=f"Graph refused its members: {exc}")
                )
                continue
            for item in members:
                add(item, selector)
            count = len(members)
            if count == 0:
                result.warnings.append(f"group {selector.value!r} has no user members")
        elif selector.kind is TargetKind.QUERY:
            params = {"$filter": selector.value, "$select": USER_SELECT, "$top": "999"}
            headers: dict[str, str] = {}
            if _ADVANCED.search(selector.value):
                params["$count"] = "true"
                headers["ConsistencyLevel"] = "eventual"
            try:
                items = list(reader.pages("/users", params=params, headers=headers))
            except PageError as exc:
                result.unresolved.append(
                    Unresolved(selector=selector, reason=f"Graph refused the query: {exc}")
                )
                continue
            if not items:
                result.warnings.append(f"query {selector.value!r} matched no users")
            for item in items:
                add(item, selector)
    overlaps = _settle_overlaps(plan, found, named, result.warnings)
    if overlaps:
        result.warnings.append(
            f"{overlaps} users are named by more than one target (overlapping groups or "
            "queries); each is one target"
        )
    result.targets.extend(found.values())
    return result


def _describe(selector: TargetSelector) -> str:
    """`user adele@contoso.com`, `group 'Sales'`: a selector by its value, never by its place
    in the file (warnings are part of the digest, which reformatting must not change)."""
    if selector.kind is TargetKind.USER:
        return f"user {selector.value}"
    return f"{selector.kind} {selector.value!r}"


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _settle_overlaps(
    plan: Plan,
    found: dict[str, Target],
    named: Mapping[str, list[TargetSelector]],
    warnings: list[str],
) -> int:
    """One target per user however many selectors reach it. A user named with different
    actions gets all of them, in the plan's order of its selectors, and a warning says so;
    returns how many users were reached again through a group or query with the same actions."""
    position = {id(selector): index for index, selector in enumerate(plan.targets)}
    same = 0
    for user_id, selectors in named.items():
        if len(selectors) < 2:
            continue
        ordered = sorted(selectors, key=lambda s: position.get(id(s), len(position)))
        upn = found[user_id].state.upn
        lists = [plan.actions_for(s) for s in ordered]
        if any(actions != lists[0] for actions in lists):
            merged = tuple(dict.fromkeys(name for actions in lists for name in actions))
            found[user_id] = Target(state=found[user_id].state, selector=ordered[0], actions=merged)
            each = "; ".join(
                f"{_describe(s)}: {', '.join(a)}" for s, a in zip(ordered, lists, strict=True)
            )
            warnings.append(
                f"{upn} is named by several targets with different actions ({each}); "
                f"it gets all of them: {', '.join(merged)}"
            )
        elif all(s.kind is TargetKind.USER for s in ordered):
            where = " and ".join(_describe(s) for s in ordered)
            warnings.append(
                f"{upn} is named {_times(len(ordered))} ({where}: its UPN and its object id, "
                "say); it is one target"
            )
        else:
            found[user_id] = Target(
                state=found[user_id].state, selector=ordered[0], actions=lists[0]
            )
            same += 1
    return same


def read_details(
    reader: Reader,
    states: Sequence[UserState],
    needed: frozenset[NeededRead],
    *,
    beta_methods: bool,
    warnings: list[str],
) -> dict[str, UserState]:
    """Each user's methods, default method and per-user MFA state, as the actions need."""
    failures: dict[str, str] = {}
    detailed: dict[str, UserState] = {}
    for start in range(0, len(states), READ_SLICE):
        part = states[start : start + READ_SLICE]
        _add_details(reader, part, needed, beta_methods, failures, detailed)
    for what, reason in failures.items():
        warnings.append(f"could not read {what}: {reason}")
    return detailed


def _add_details(
    reader: Reader,
    states: Sequence[UserState],
    needed: frozenset[NeededRead],
    beta_methods: bool,
    failures: dict[str, str],
    detailed: dict[str, UserState],
) -> None:
    reads: list[Read] = []
    for state in states:
        base = f"/users/{quote(state.id)}/authentication"
        if NeededRead.METHODS in needed:
            version = "beta" if beta_methods else "v1.0"
            reads.append(Read(id=f"m:{state.id}", url=f"{base}/methods", version=version))
        if NeededRead.SIGN_IN_PREFERENCES in needed:
            reads.append(Read(id=f"p:{state.id}", url=f"{base}/signInPreferences", version="beta"))
        if NeededRead.REQUIREMENTS in needed:
            reads.append(Read(id=f"r:{state.id}", url=f"{base}/requirements", version="beta"))
    answers = reader.run(reads)
    for state in states:
        changes: dict[str, object] = {}
        methods = answers.get(f"m:{state.id}")
        if methods is not None:
            if methods.status == 200 and isinstance(methods.body, dict):
                changes["methods"] = tuple(
                    Method.from_graph(item)
                    for item in methods.body.get("value", [])
                    if isinstance(item, dict)
                )
            else:
                failures.setdefault("authentication methods", _reason(methods, "user"))
        prefs = answers.get(f"p:{state.id}")
        if prefs is not None:
            if prefs.status == 200 and isinstance(prefs.body, dict):
                changes["preferred_method"] = prefs.body.get(
                    "userPreferredMethodForSecondaryAuthentication"
                )
            else:
                failures.setdefault(
                    "default methods (beta signInPreferences)", _reason(prefs, "user")
                )
        requirements = answers.get(f"r:{state.id}")
        if requirements is not None:
            if requirements.status == 200 and isinstance(requirements.body, dict):
                changes["per_user_mfa"] = requirements.body.get("perUserMfaState")
            else:
                failures.setdefault(
                    "per-user MFA states (beta requirements)", _reason(requirements, "user")
                )
        detailed[state.id] = replace(state, **changes)  # type: ignore[arg-type]

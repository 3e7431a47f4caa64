"""The dry-run against the emulated tenant: resolution, state, rails, preflight, digest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner import validate
from runner.config import settings_from_connection
from runner.emulator import Emulator
from runner.errors import AuthError, RefusedError
from runner.frozen import FrozenPlan
from runner.graph.client import GraphClient
from runner.plan import Plan
from runner.planner import make_plan
from tests.conftest import EmulatorFactory

NOW = dt.datetime(2026, 11, 28, 9, 0, 0, tzinfo=dt.UTC)


class StaticTokens:
    """A token provider for tests of the planner's logic (msal flows are tested elsewhere)."""

    description = "test token"

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        return self.token


def _plan(tmp_path: Path, text: str, name: str = "p.yaml") -> Plan:
    path = tmp_path / name
    path.write_text(text)
    result = validate.load(str(path))
    assert result.plan is not None, [p.render() for p in result.problems]
    return result.plan


def _run(
    emulator: Emulator, plan: Plan, *, token: str | None = None, now: dt.datetime = NOW
) -> FrozenPlan:
    settings = settings_from_connection(emulator.info)
    tokens = StaticTokens(token or emulator.mint_app_token())
    with GraphClient(root_url=emulator.graph_url, token=tokens.access_token) as client:
        return make_plan(plan, client=client, tokens=tokens, settings=settings, now=now)


def _target(frozen: FrozenPlan, upn: str) -> dict[str, Any]:
    for target in frozen.content["targets"]:
        if target["upn"] == upn:
            return dict(target)
    raise AssertionError(f"{upn} not in the plan")


def _summaries(frozen: FrozenPlan, upn: str) -> list[tuple[str, str, str]]:
    return [(a["action"], a["kind"], a["summary"]) for a in _target(frozen, upn)["actions"]]


HEADER = "version: 1\nname: t\nsafety: {required_approvals: 1}\n"


def test_members_guests_synced_and_disabled_users(emulator: Emulator, tmp_path: Path) -> None:
    """Each kind of user gets the diff Graph's rules call for."""
    plan = _plan(
        tmp_path,
        HEADER
        + "actions: [reset_password, revoke_sessions, disable_account]\n"
        + "targets:\n"
        + "  - user: adele.vance@contoso.com\n"
        + "  - user: nadia.cruz_fabrikam.com#EXT#@contoso.onmicrosoft.com\n"
        + "  - user: erik.dang@contoso.com\n"
        + "  - user: amara.hernandez@contoso.com\n",
    )
    frozen = _run(emulator, plan)
    assert _summaries(frozen, "adele.vance@contoso.com") == [
        (
            "reset_password",
            "change",
            "will set a generated temporary password of 20 characters, "
            "to be changed at next sign-in",
        ),
        ("revoke_sessions", "change", "will revoke all sign-in sessions and refresh tokens"),
        ("disable_account", "change", "will disable sign-in (accountEnabled: false)"),
    ]
    guest = _summaries(frozen, "nadia.cruz_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    assert guest[1] == (
        "revoke_sessions",
        "not_applicable",
        "not applicable: Graph does not revoke the sessions of external (B2B) users; "
        "revoke them in the user's home tenant",
    )
    synced = _target(frozen, "erik.dang@contoso.com")
    assert synced["synced"] is True
    assert synced["actions"][0]["warnings"] == [
        "synced from on-premises AD: Graph refuses password writes for it "
        "(reset it in on-premises AD instead)"
    ]
    assert _summaries(frozen, "amara.hernandez@contoso.com")[2] == (
        "disable_account",
        "noop",
        "no-op: already disabled",
    )


def test_methods_are_read_and_the_default_goes_last(emulator: Emulator, tmp_path: Path) -> None:
    """Re-registration lists the user's real methods, default last, as Graph shows them."""
    plan = _plan(
        tmp_path,
        HEADER
        + "actions: [require_mfa_reregistration]\ntargets:\n  - user: megan.bowen@contoso.com\n",
    )
    frozen = _run(emulator, plan)
    ((_, kind, summary),) = _summaries(frozen, "megan.bowen@contoso.com")
    assert kind == "change"
    assert summary.startswith("will delete 3 methods: office phone +1 ")
    assert summary.endswith("(default Authenticator on iPhone SE last)")


def test_group_expansion_is_transitive(emulator: Emulator, tmp_path: Path) -> None:
    """A group's nested groups' users are targets; the group's own entry names its source."""
    plan = _plan(
        tmp_path, HEADER + "actions: [revoke_sessions]\ntargets:\n  - group: Contractors\n"
    )
    frozen = _run(emulator, plan)
    assert frozen.content["summary"]["targets"] == 4
    assert set(frozen.info["target_sources"].values()) == {f"{tmp_path / 'p.yaml'}:6:5"}


def test_query_expansion(emulator: Emulator, tmp_path: Path) -> None:
    """An OData filter selects users; advanced operators send ConsistencyLevel."""
    plan = _plan(
        tmp_path,
        HEADER
        + "actions: [revoke_sessions]\ntargets:\n"
        + "  - query: \"department eq 'Finance' and accountEnabled eq true\"\n"
        + "  - query: \"endswith(userPrincipalName,'@contoso.com') and department eq 'Legal'\"\n",
    )
    frozen = _run(emulator, plan)
    departments = {t["upn"] for t in frozen.content["targets"]}
    assert "lynne.robbins@contoso.com" in departments
    assert "joni.sherman@contoso.com" in departments


def test_paging_through_a_large_group(emulator_factory: EmulatorFactory, tmp_path: Path) -> None:
    """A group of more than 999 users is read page after page."""
    emulator = emulator_factory(users=1100)
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [revoke_sessions]\n"
        "targets:\n  - group: All Staff\nsafety: {max_targets: 5000}\n",
    )
    frozen = _run(emulator, plan)
    assert frozen.content["summary"]["targets"] > 999


def test_not_found_targets_name_file_and_line(emulator: Emulator, tmp_path: Path) -> None:
    """Unknown users, groups and foreign domains are reported with where they were written."""
    plan = _plan(
        tmp_path,
        HEADER
        + "actions: [revoke_sessions]\ntargets:\n"
        + "  - user: nobody.here@contoso.com\n"
        + "  - user: 00000000-0000-4000-8000-00000000abcd\n"
        + "  - user: adele@contoso-typo.com\n"
        + "  - group: No Such Group\n",
    )
    frozen = _run(emulator, plan)
    source = str(tmp_path / "p.yaml")
    assert frozen.content["unresolved"] == [
        {
            "kind": "user",
            "value": "adele@contoso-typo.com",
            "reason": "domain contoso-typo.com is not a tenant domain",
        },
        {
            "kind": "user",
            "value": "nobody.here@contoso.com",
            "reason": "not found in the tenant",
        },
        {
            "kind": "user",
            "value": "00000000-0000-4000-8000-00000000abcd",
            "reason": "not found in the tenant",
        },
        {
            "kind": "group",
            "value": "No Such Group",
            "reason": "no group has this name",
        },
    ]
    assert frozen.info["unresolved_sources"] == [
        f"{source}:8:5",
        f"{source}:6:5",
        f"{source}:7:5",
        f"{source}:9:5",
    ]


def test_upn_and_object_id_of_one_user_are_one_target(emulator: Emulator, tmp_path: Path) -> None:
    """The same user by UPN and by object id is planned once (bad input 39)."""
    user = emulator.store.user("adele.vance@contoso.com") if emulator.store else None
    assert user is not None
    plan = _plan(
        tmp_path,
        HEADER + "actions: [revoke_sessions]\ntargets:\n"
        f"  - user: adele.vance@contoso.com\n  - user: {user['id']}\n",
    )
    frozen = _run(emulator, plan)
    assert [t["upn"] for t in frozen.content["targets"]] == ["adele.vance@contoso.com"]
    assert frozen.content["warnings"] == [
        f"adele.vance@contoso.com is named twice (user adele.vance@contoso.com and user "
        f"{user['id']}: its UPN and its object id, say); it is one target"
    ]


def test_a_user_named_with_different_actions_gets_all_of_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Overlapping targets with different actions merge them, in the plan's order, and say so."""
    user = emulator.store.user("adele.vance@contoso.com") if emulator.store else None
    assert user is not None
    plan = _plan(
        tmp_path,
        HEADER + "actions: [revoke_sessions]\ntargets:\n"
        "  - group: All Staff\n"
        f"  - user: {user['id']}\n    actions: [disable_account, revoke_sessions]\n",
    )
    frozen = _run(emulator, plan)
    adele = _target(frozen, "adele.vance@contoso.com")
    assert [change["action"] for change in adele["actions"]] == [
        "revoke_sessions",
        "disable_account",
    ]
    assert (
        "adele.vance@contoso.com is named by several targets with different actions "
        f"(group 'All Staff': revoke_sessions; user {user['id']}: disable_account, "
        "revoke_sessions); "
        "it gets all of them: revoke_sessions, disable_account"
    ) in frozen.content["warnings"]


def test_rails_refuse_and_say_why(emulator: Emulator, tmp_path: Path) -> None:
    """Break-glass (protected group), privileged roles and protected users are refused."""
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [disable_account]\ntargets:\n"
        "  - user: breakglass1@contoso.onmicrosoft.com\n"
        "  - user: it.admin@contoso.com\n"
        "  - user: helpdesk@contoso.com\n"
        "  - user: alex.wilber@contoso.com\n"
        "  - user: adele.vance@contoso.com\n"
        "safety:\n  protected_users: [alex.wilber@contoso.com]\n",
    )
    frozen = _run(emulator, plan)
    refused = {t["upn"]: t["refused"] for t in frozen.content["targets"]}
    assert refused == {
        "breakglass1@contoso.onmicrosoft.com": (
            "member of protected group 'Emergency Access Accounts'"
        ),
        "it.admin@contoso.com": "privileged role Global Administrator (allow it by object id in "
        "safety.allow_privileged)",
        "helpdesk@contoso.com": "privileged role Helpdesk Administrator (allow it by object id "
        "in safety.allow_privileged)",
        "alex.wilber@contoso.com": "protected user",
        "adele.vance@contoso.com": None,
    }
    assert _summaries(frozen, "it.admin@contoso.com")[0][1] == "refused"
    assert frozen.content["summary"]["refused_targets"] == 4


def test_a_protected_group_that_cannot_be_found_refuses_the_plan(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A misspelt protected group protects nobody, so the plan is refused (exit 3), not warned."""
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [disable_account]\n"
        "targets:\n  - user: adele.vance@contoso.com\n"
        "safety:\n  protected_groups: [Emergency Acess Accounts]\n",
    )
    with pytest.raises(RefusedError) as raised:
        _run(emulator, plan)
    assert str(raised.value) == (
        "protected group 'Emergency Acess Accounts' cannot be read (no group has this name): "
        "nothing is planned"
    )


def test_unreadable_role_holders_refuse_the_plan(
    emulator: Emulator, admin: httpx.Client, tmp_path: Path
) -> None:
    """When the privileged roles' members cannot be read, no target can be told safe: exit 3."""
    rule = {"kind": "status", "status": 403, "method": "GET", "path": "/directoryRoles/*/members"}
    assert admin.post("/faults", json=rule).status_code == 201
    plan = _plan(tmp_path, BASE)
    with pytest.raises(RefusedError) as raised:
        _run(emulator, plan)
    assert str(raised.value).startswith(
        "could not read the holders of privileged directory roles (403 "
    )
    assert str(raised.value).endswith(
        "privileged targets cannot be told apart, so nothing is planned"
    )


def test_a_group_whose_members_are_refused_is_unresolved(
    emulator: Emulator, admin: httpx.Client, graph: httpx.Client, tmp_path: Path
) -> None:
    """A 403 on a target group's members plans none of them and says why."""
    found = graph.get("/groups", params={"$filter": "displayName eq 'Leavers 2026-Q4'"})
    (group,) = found.json()["value"]
    rule = {
        "kind": "status",
        "status": 403,
        "method": "GET",
        "path": f"/groups/{group['id']}/transitiveMembers/microsoft.graph.user",
    }
    assert admin.post("/faults", json=rule).status_code == 201
    plan = _plan(
        tmp_path, HEADER + "actions: [revoke_sessions]\ntargets:\n  - group: Leavers 2026-Q4\n"
    )
    frozen = _run(emulator, plan)
    assert frozen.content["targets"] == []
    (unresolved,) = frozen.content["unresolved"]
    assert unresolved["reason"].startswith("Graph refused its members: 403 ")


def test_allow_privileged_by_object_id(emulator: Emulator, tmp_path: Path) -> None:
    """A privileged user listed by object id in allow_privileged is planned."""
    user = emulator.store.user("helpdesk@contoso.com") if emulator.store else None
    assert user is not None
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [revoke_sessions]\ntargets:\n"
        f"  - user: helpdesk@contoso.com\nsafety:\n  allow_privileged: [{user['id']}]\n",
    )
    frozen = _run(emulator, plan)
    assert _target(frozen, "helpdesk@contoso.com")["refused"] is None


def test_signed_in_administrator_is_refused_as_self(emulator: Emulator, tmp_path: Path) -> None:
    """A delegated plan must not touch the administrator running it."""
    user = emulator.store.user("pa.admin@contoso.com") if emulator.store else None
    assert user is not None
    token = emulator.mint_user_token("pa.admin@contoso.com")
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [revoke_sessions]\ntargets:\n"
        f"  - user: pa.admin@contoso.com\nsafety:\n  allow_privileged: [{user['id']}]\n",
    )
    frozen = _run(emulator, plan, token=token)
    assert _target(frozen, "pa.admin@contoso.com")["refused"] == (
        "the signed-in administrator (a plan must not lock out its own operator)"
    )
    assert frozen.content["author"]["name"] == "pa.admin@contoso.com"


def test_max_targets_refuses_the_plan(emulator: Emulator, tmp_path: Path) -> None:
    """More targets than safety.max_targets stops the plan with exit 3."""
    plan = _plan(
        tmp_path,
        "version: 1\nname: t\nactions: [revoke_sessions]\ntargets:\n  - group: HR Team\n"
        "safety: {max_targets: 3}\n",
    )
    with pytest.raises(RefusedError) as info:
        _run(emulator, plan)
    assert str(info.value) == (
        "the plan would act on 8 targets, more than its safety.max_targets of 3"
    )


@pytest.mark.parametrize(
    ("actions", "drop", "expected"),
    [
        (
            "reset_password",
            "User-PasswordProfile.ReadWrite.All",
            "reset_password needs User-PasswordProfile.ReadWrite.All",
        ),
        (
            "revoke_sessions",
            "User.RevokeSessions.All",
            "revoke_sessions needs User.RevokeSessions.All",
        ),
        (
            "disable_account",
            "User.EnableDisableAccount.All",
            "disable_account needs User.EnableDisableAccount.All",
        ),
        (
            "require_mfa_reregistration",
            "UserAuthenticationMethod.ReadWrite.All",
            "reading authentication methods needs UserAuthenticationMethod.Read.All; "
            "require_mfa_reregistration needs UserAuthenticationMethod.ReadWrite.All",
        ),
        (
            "set_per_user_mfa",
            "Policy.ReadWrite.AuthenticationMethod",
            "set_per_user_mfa needs Policy.ReadWrite.AuthenticationMethod",
        ),
        (
            "create_temporary_access_pass",
            "UserAuthenticationMethod.ReadWrite.All",
            "reading authentication methods needs UserAuthenticationMethod.Read.All; "
            "create_temporary_access_pass needs UserAuthMethod-TAP.ReadWrite.All",
        ),
    ],
)
def test_preflight_names_each_missing_permission(
    emulator: Emulator, admin: httpx.Client, tmp_path: Path, actions: str, drop: str, expected: str
) -> None:
    """A token without an action's permission stops the plan (exit 5) before any Graph call."""
    permissions = [p for p in emulator.app_entry("entra-bulk-admin")["permissions"] if p != drop]
    token = emulator.mint_app_token(permissions=permissions)
    options = "options: {set_per_user_mfa: {state: enforced}}\n" if "per_user" in actions else ""
    plan = _plan(
        tmp_path,
        HEADER + f"actions: [{actions}]\n{options}targets:\n  - user: adele.vance@contoso.com\n",
    )
    before = len(admin.get("/requests").json()["value"])
    with pytest.raises(AuthError) as info:
        _run(emulator, plan, token=token)
    app_id = emulator.app_entry("entra-bulk-admin")["client_id"]
    assert str(info.value) == (
        f"the token of app {app_id} (app-only) lacks what the plan needs: {expected}"
    )
    assert len(admin.get("/requests").json()["value"]) == before


def test_app_without_a_directory_role_cannot_reset_passwords(
    emulator: Emulator, tmp_path: Path
) -> None:
    """App-only password reset needs a directory role: the planner reads it and refuses."""
    plan = _plan(
        tmp_path,
        HEADER + "actions: [reset_password]\ntargets:\n  - user: adele.vance@contoso.com\n",
    )
    with pytest.raises(AuthError) as info:
        _run(emulator, plan, token=emulator.mint_app_token("entra-bulk-no-role"))
    assert str(info.value) == (
        "reset_password need the app to hold a directory role such as User Administrator "
        "(Privileged Authentication Administrator to act on administrators); it holds none"
    )


BASE = (
    "version: 1\nname: digest-test\nticket: INC-1\nactions: [revoke_sessions, disable_account]\n"
    "targets:\n  - user: adele.vance@contoso.com\n  - user: megan.bowen@contoso.com\n"
)
REFORMATTED = (
    "# a comment\nname: 'digest-test'\nversion: 1\nticket: \"INC-1\"\n"
    "targets: [{user: adele.vance@contoso.com}, {user: megan.bowen@contoso.com}]\n"
    "actions:\n  - revoke_sessions\n  - disable_account\n"
)


def test_digest_is_stable_with_a_fixed_clock(emulator: Emulator, tmp_path: Path) -> None:
    """Same source, same tenant, same clock: same digest; reformatting changes nothing."""
    first = _run(emulator, _plan(tmp_path, BASE, "a.yaml"))
    again = _run(emulator, _plan(tmp_path, BASE, "a.yaml"))
    reformatted = _run(emulator, _plan(tmp_path, REFORMATTED, "b.yaml"))
    assert first.digest == again.digest == reformatted.digest
    assert first.digest_matches()


def test_where_targets_were_written_is_outside_the_digest(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Unresolved and duplicate targets moved to other lines of another file: same digest."""
    user = emulator.store.user("adele.vance@contoso.com") if emulator.store else None
    assert user is not None
    extra = f"  - user: nobody.here@contoso.com\n  - user: {user['id']}\n"
    first = _run(emulator, _plan(tmp_path, BASE + extra, "a.yaml"))
    moved = _run(emulator, _plan(tmp_path, "# moved\n\n" + BASE + extra, "b.yaml"))
    assert first.content["unresolved"] and first.content["warnings"]
    assert first.info["unresolved_sources"] != moved.info["unresolved_sources"]
    assert first.digest == moved.digest


@pytest.mark.parametrize(
    "changed",
    [
        BASE.replace("INC-1", "INC-2"),
        BASE.replace("disable_account]", "enable_account]"),
        BASE + "  - user: alex.wilber@contoso.com\n",
    ],
)
def test_any_semantic_change_changes_the_digest(
    emulator: Emulator, tmp_path: Path, changed: str
) -> None:
    """Another ticket, action or target gives another digest."""
    first = _run(emulator, _plan(tmp_path, BASE, "a.yaml"))
    other = _run(emulator, _plan(tmp_path, changed, "b.yaml"))
    assert first.digest != other.digest


def test_a_tenant_change_changes_the_digest(
    emulator: Emulator, admin: httpx.Client, tmp_path: Path
) -> None:
    """A target that became privileged since the last plan changes fingerprint and digest."""
    first = _run(emulator, _plan(tmp_path, BASE, "a.yaml"))
    user = emulator.store.user("megan.bowen@contoso.com") if emulator.store else None
    assert user is not None
    admin.post("/roles/Security Administrator/members", json={"id": user["id"]})
    second = _run(emulator, _plan(tmp_path, BASE, "a.yaml"))
    assert first.digest != second.digest
    megan = _target(second, "megan.bowen@contoso.com")
    assert megan["privileged_roles"] == ["Security Administrator"]
    assert megan["fingerprint"] != _target(first, "megan.bowen@contoso.com")["fingerprint"]

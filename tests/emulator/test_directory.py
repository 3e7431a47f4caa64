"""The emulated directory: memberships, groups, directory roles, service principals, tenant."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from runner.emulator.authz import GLOBAL_ADMIN, PRIVILEGED_AUTH_ADMIN, USER_ADMIN
from tests.conftest import EmulatorFactory

DENIED = {
    "code": "Authorization_RequestDenied",
    "message": "Insufficient privileges to complete the operation.",
}


def client(emulator: Emulator, app: str = "entra-bulk-admin", **token: Any) -> httpx.Client:
    """An httpx client on /v1.0 for an app of the tenant (optionally other permissions)."""
    bearer = emulator.mint_app_token(app, **token)
    return httpx.Client(
        base_url=f"{emulator.graph_url}/v1.0",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )


def error(response: httpx.Response) -> dict[str, Any]:
    """`error.code` and `error.message` of a Graph error response."""
    body = response.json()["error"]
    return {"code": body["code"], "message": body["message"]}


def group_id(graph: httpx.Client, name: str) -> str:
    """A group's id by display name."""
    escaped = name.replace("'", "''")
    (group,) = graph.get("/groups", params={"$filter": f"displayName eq '{escaped}'"}).json()[
        "value"
    ]
    return str(group["id"])


def every_page(graph: httpx.Client, url: str, **headers: str) -> list[dict[str, Any]]:
    """All items of a collection, following nextLinks verbatim."""
    items: list[dict[str, Any]] = []
    link: str | None = url
    while link:
        page = graph.get(link, headers=headers).json()
        items += page["value"]
        link = page.get("@odata.nextLink")
    return items


def names(items: list[dict[str, Any]]) -> set[str]:
    """Display names (or UPNs for users) of directory objects."""
    return {str(item.get("userPrincipalName") or item["displayName"]) for item in items}


# -- memberships -----------------------------------------------------------------------------


def test_member_of_lists_groups_and_roles_typed(graph: httpx.Client, emulator: Emulator) -> None:
    """memberOf: groups and directoryRole objects, each with @odata.type, directoryObjects."""
    page = graph.get("/users/it.admin@contoso.com/memberOf").json()
    assert page["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#directoryObjects"
    by_type: dict[str, set[str]] = {}
    for item in page["value"]:
        by_type.setdefault(item["@odata.type"], set()).add(item["displayName"])
    assert by_type == {
        "#microsoft.graph.group": {"IT Administrators", "All Staff"},
        "#microsoft.graph.directoryRole": {"Global Administrator"},
    }
    role = next(i for i in page["value"] if i["@odata.type"].endswith("directoryRole"))
    assert role["roleTemplateId"] == GLOBAL_ADMIN


def test_member_of_casts(graph: httpx.Client, emulator: Emulator) -> None:
    """/microsoft.graph.group and /microsoft.graph.directoryRole keep one type each."""
    groups = graph.get("/users/it.admin@contoso.com/memberOf/microsoft.graph.group").json()
    assert groups["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#groups"
    assert {i["@odata.type"] for i in groups["value"]} == {"#microsoft.graph.group"}
    roles = graph.get("/users/it.admin@contoso.com/memberOf/microsoft.graph.directoryRole").json()
    assert roles["@odata.context"].endswith("$metadata#directoryRoles")
    assert [i["displayName"] for i in roles["value"]] == ["Global Administrator"]
    bad = graph.get("/users/it.admin@contoso.com/memberOf/microsoft.graph.banana")
    assert bad.status_code == 400
    assert error(bad) == {
        "code": "BadRequest",
        "message": "Resource not found for the segment 'microsoft.graph.banana'.",
    }


def test_transitive_member_of_follows_nesting(graph: httpx.Client) -> None:
    """A Finance contractor is transitively in Contractors and Finance Team via nesting."""
    contractors = group_id(graph, "Finance Contractors")
    member = graph.get(f"/groups/{contractors}/members/microsoft.graph.user").json()["value"][0]
    direct = names(graph.get(f"/users/{member['id']}/memberOf").json()["value"])
    transitive = names(graph.get(f"/users/{member['id']}/transitiveMemberOf").json()["value"])
    assert "Finance Contractors" in direct and "Contractors" not in direct
    assert {"Finance Contractors", "Contractors", "Finance Team"} <= transitive
    assert direct < transitive


def test_member_of_via_me_and_batch(emulator: Emulator, graph: httpx.Client) -> None:
    """/me/memberOf for a delegated token; the same call inside $batch answers the same."""
    token = emulator.mint_user_token(
        "it.admin@contoso.com", scopes=["User.Read", "Directory.Read.All"]
    )
    mine = httpx.get(
        f"{emulator.graph_url}/v1.0/me/memberOf", headers={"Authorization": f"Bearer {token}"}
    ).json()
    standalone = graph.get("/users/it.admin@contoso.com/memberOf").json()
    assert mine["value"] == standalone["value"]
    batch = graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users/it.admin@contoso.com/memberOf"}
            ]
        },
    ).json()
    (item,) = batch["responses"]
    assert item["status"] == 200 and item["body"]["value"] == standalone["value"]
    assert item["headers"]["x-ms-resource-unit"] == "2"


def test_next_link_keeps_the_key_literal_form(
    graph: httpx.Client, admin: httpx.Client, emulator: Emulator
) -> None:
    """Paging /users('$svc@…')/memberOf follows nextLinks in the ('key') form, not a 400."""
    assert emulator.store is not None
    created = admin.post("/users", json={"userPrincipalName": "$svc@contoso.com"}).json()
    for name in ("Contractors", "Leavers 2026-Q4"):
        emulator.store.execute(
            "INSERT INTO group_members (group_id, member_id, member_type) VALUES (?, ?, 'user')",
            (group_id(graph, name), created["id"]),
        )
    first = graph.get("/users('$svc@contoso.com')/memberOf", params={"$top": "1"}).json()
    link = first["@odata.nextLink"]
    assert link.startswith(f"{emulator.graph_url}/v1.0/users(%27$svc@contoso.com%27)/memberOf?")
    second = graph.get(link)
    assert second.status_code == 200
    assert names(first["value"] + second.json()["value"]) == {"Contractors", "Leavers 2026-Q4"}


# -- groups ----------------------------------------------------------------------------------


def test_groups_filter_eq_with_escaped_quote_and_startswith(
    graph: httpx.Client, emulator: Emulator
) -> None:
    """displayName eq '…' with '' escaping finds the group; startswith filters by prefix."""
    assert emulator.store is not None
    gid = str(uuid.uuid4())
    emulator.store.execute(
        "INSERT INTO groups_ (id, display_name, description, mail_nickname, created) "
        "VALUES (?, ?, 'test', 'ops', '2026-06-01T00:00:00Z')",
        (gid, "Ops' On-Call"),
    )
    page = graph.get("/groups", params={"$filter": "displayName eq 'Ops'' On-Call'"}).json()
    assert page["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#groups"
    assert [g["id"] for g in page["value"]] == [gid]
    assert "@odata.type" not in page["value"][0]
    found = graph.get("/groups", params={"$filter": "startswith(displayName,'finance')"}).json()
    assert sorted(g["displayName"] for g in found["value"]) == [
        "Finance Contractors",
        "Finance Team",
    ]


def test_get_group_and_404(graph: httpx.Client) -> None:
    """GET /groups/{id} returns the group; an unknown id is 404 Request_ResourceNotFound."""
    gid = group_id(graph, "Contractors")
    group = graph.get(f"/groups/{gid}", params={"$select": "id,displayName,securityEnabled"})
    assert group.json()["displayName"] == "Contractors"
    assert list(group.json())[1:] == ["id", "displayName", "securityEnabled"]
    missing = graph.get(f"/groups/{uuid.uuid4()}")
    assert missing.status_code == 404 and error(missing)["code"] == "Request_ResourceNotFound"


def test_members_and_transitive_members(graph: httpx.Client, emulator: Emulator) -> None:
    """members = the nested groups; transitiveMembers adds their users; the cast keeps users."""
    gid = group_id(graph, "Contractors")
    direct = graph.get(f"/groups/{gid}/members").json()
    assert direct["@odata.context"].endswith("$metadata#directoryObjects")
    assert names(direct["value"]) == {"Finance Contractors", "Engineering Contractors"}
    finance = every_page(graph, f"/groups/{group_id(graph, 'Finance Contractors')}/members")
    engineering = every_page(graph, f"/groups/{group_id(graph, 'Engineering Contractors')}/members")
    everyone = every_page(graph, f"/groups/{gid}/transitiveMembers")
    assert names(everyone) == names(direct["value"]) | names(finance) | names(engineering)
    users = graph.get(f"/groups/{gid}/transitiveMembers/microsoft.graph.user").json()
    assert users["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#users"
    assert {u["@odata.type"] for u in users["value"]} == {"#microsoft.graph.user"}
    assert names(users["value"]) == names(finance) | names(engineering)


def test_transitive_expansion_survives_a_cycle(graph: httpx.Client, emulator: Emulator) -> None:
    """A nesting cycle (Contractors inside Finance Contractors) neither loops nor duplicates."""
    assert emulator.store is not None
    gid, finance = group_id(graph, "Contractors"), group_id(graph, "Finance Contractors")
    before = every_page(graph, f"/groups/{gid}/transitiveMembers/microsoft.graph.user")
    emulator.store.execute(
        "INSERT INTO group_members (group_id, member_id, member_type) VALUES (?, ?, 'group')",
        (finance, gid),
    )
    after = every_page(graph, f"/groups/{gid}/transitiveMembers/microsoft.graph.user")
    assert sorted(u["id"] for u in after) == sorted(u["id"] for u in before)
    member = graph.get(f"/groups/{finance}/members/microsoft.graph.user").json()["value"][0]
    transitive = names(graph.get(f"/users/{member['id']}/transitiveMemberOf").json()["value"])
    assert {"Finance Contractors", "Contractors", "Finance Team"} <= transitive


def test_member_paging_in_a_250_user_tenant(emulator_factory: EmulatorFactory) -> None:
    """Member pages of 100 or 999 via skiptokens, $top=1000 is 400, count on page one only."""
    emu = emulator_factory(users=250)
    with client(emu) as http:
        gid = group_id(http, "All Staff")
        url = f"/groups/{gid}/transitiveMembers/microsoft.graph.user?$select=id,accountEnabled"
        first = http.get(url).json()
        assert len(first["value"]) == 100
        assert "$skiptoken=X%27" in first["@odata.nextLink"]
        assert "$select=id,accountEnabled" in first["@odata.nextLink"]
        paged = every_page(http, url)
        assert len(paged) == len({u["id"] for u in paged}) > 200
        whole = http.get(url + "&$top=999").json()
        assert [u["id"] for u in whole["value"]] == [u["id"] for u in paged]
        assert "@odata.nextLink" not in whole
        too_big = http.get(url + "&$top=1000")
        assert too_big.status_code == 400
        counted = http.get(url + "&$count=true&$top=5", headers={"ConsistencyLevel": "eventual"})
        assert counted.json()["@odata.count"] == len(paged)
        second = http.get(
            counted.json()["@odata.nextLink"], headers={"ConsistencyLevel": "eventual"}
        )
        assert "@odata.count" not in second.json()


def test_member_filter_needs_advanced_query(graph: httpx.Client) -> None:
    """$filter on members is 400 by default; with ConsistencyLevel + $count it filters."""
    gid = group_id(graph, "All Staff")
    url = f"/groups/{gid}/transitiveMembers/microsoft.graph.user"
    params = {"$filter": "accountEnabled eq false"}
    bare = graph.get(url, params=params)
    assert bare.status_code == 400
    assert error(bare) == {
        "code": "Request_UnsupportedQuery",
        "message": "The specified filter to the reference property query is currently not "
        "supported.",
    }
    advanced = graph.get(
        url, params={**params, "$count": "true"}, headers={"ConsistencyLevel": "eventual"}
    ).json()
    assert advanced["value"] and all(
        graph.get(f"/users/{u['id']}", params={"$select": "accountEnabled"}).json()[
            "accountEnabled"
        ]
        is False
        for u in advanced["value"]
    )
    assert advanced["@odata.count"] == len(advanced["value"])


def test_resource_units_of_directory_reads(graph: httpx.Client) -> None:
    """Costs per graph-reference §10: members 3, transitiveMembers 5, memberOf 2 ($select -1)."""
    gid = group_id(graph, "Contractors")
    assert graph.get(f"/groups/{gid}/members").headers["x-ms-resource-unit"] == "3"
    assert graph.get(f"/groups/{gid}/transitiveMembers").headers["x-ms-resource-unit"] == "5"
    assert (
        graph.get(f"/groups/{gid}/transitiveMembers?$select=id").headers["x-ms-resource-unit"]
        == "4"
    )
    memberships = graph.get("/users/it.admin@contoso.com/transitiveMemberOf")
    assert memberships.headers["x-ms-resource-unit"] == "2"


# -- directory roles and role definitions ----------------------------------------------------


def test_directory_roles_are_listed_without_paging(graph: httpx.Client, emulator: Emulator) -> None:
    """GET /directoryRoles: every activated role in one page, with roleTemplateId."""
    page = graph.get("/directoryRoles", params={"$top": "2"}).json()
    assert page["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#directoryRoles"
    assert "@odata.nextLink" not in page and len(page["value"]) > 2
    templates = {role["roleTemplateId"] for role in page["value"]}
    assert {GLOBAL_ADMIN, PRIVILEGED_AUTH_ADMIN, USER_ADMIN} <= templates
    assert set(page["value"][0]) == {
        "id",
        "deletedDateTime",
        "description",
        "displayName",
        "roleTemplateId",
    }


def test_role_by_template_and_its_members(graph: httpx.Client, emulator: Emulator) -> None:
    """directoryRoles(roleTemplateId='…') and its members: users, typed, break-glass included."""
    role = graph.get(f"/directoryRoles(roleTemplateId='{GLOBAL_ADMIN}')").json()
    assert role["displayName"] == "Global Administrator"
    assert role["@odata.context"].endswith("$metadata#directoryRoles/$entity")
    by_id = graph.get(f"/directoryRoles/{role['id']}").json()
    assert by_id["roleTemplateId"] == GLOBAL_ADMIN
    members = graph.get(f"/directoryRoles(roleTemplateId='{GLOBAL_ADMIN}')/members").json()
    assert names(members["value"]) == {
        "breakglass1@contoso.onmicrosoft.com",
        "breakglass2@contoso.onmicrosoft.com",
        "it.admin@contoso.com",
    }
    assert {m["@odata.type"] for m in members["value"]} == {"#microsoft.graph.user"}
    missing = graph.get(f"/directoryRoles/{uuid.uuid4()}")
    assert missing.status_code == 404


def test_role_members_include_service_principals(graph: httpx.Client, emulator: Emulator) -> None:
    """The PAA role's members include the runner apps' service principals, typed as such."""
    members = graph.get(f"/directoryRoles(roleTemplateId='{PRIVILEGED_AUTH_ADMIN}')/members")
    sps = [
        m
        for m in members.json()["value"]
        if m["@odata.type"] == "#microsoft.graph.servicePrincipal"
    ]
    assert {sp["appId"] for sp in sps} == {
        emulator.app_entry("entra-bulk-admin")["client_id"],
        emulator.app_entry("entra-bulk-managed-identity")["client_id"],
    }


def test_privileged_role_definitions(graph: httpx.Client, emulator: Emulator) -> None:
    """roleDefinitions?$filter=isPrivileged eq true: privileged built-ins, id = template id."""
    page = graph.get(
        "/roleManagement/directory/roleDefinitions",
        params={
            "$filter": "isPrivileged eq true",
            "$select": "id,displayName,isPrivileged,isBuiltIn,templateId",
        },
    ).json()
    assert page["@odata.context"] == (
        f"{emulator.graph_url}/v1.0/$metadata#roleManagement/directory/roleDefinitions"
        "(id,displayName,isPrivileged,isBuiltIn,templateId)"
    )
    by_name = {d["displayName"]: d for d in page["value"]}
    assert "Global Administrator" in by_name and "Directory Readers" not in by_name
    assert all(d["isPrivileged"] and d["isBuiltIn"] for d in page["value"])
    assert all(d["id"] == d["templateId"] for d in page["value"])
    one = graph.get(f"/roleManagement/directory/roleDefinitions/{GLOBAL_ADMIN}").json()
    assert one["displayName"] == "Global Administrator"


# -- service principals ----------------------------------------------------------------------


def test_an_app_reads_its_own_roles(graph: httpx.Client, emulator: Emulator) -> None:
    """servicePrincipals(appId='…') finds the app; its memberOf lists its directory roles."""
    for app, role in (
        ("entra-bulk-admin", "Privileged Authentication Administrator"),
        ("entra-bulk-user-admin", "User Administrator"),
    ):
        app_id = emulator.app_entry(app)["client_id"]
        sp = graph.get(f"/servicePrincipals(appId='{app_id}')").json()
        assert sp["appId"] == app_id and sp["displayName"] == app
        assert sp["@odata.context"].endswith("$metadata#servicePrincipals/$entity")
        listed = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"})
        assert [item["id"] for item in listed.json()["value"]] == [sp["id"]]
        assert graph.get(f"/servicePrincipals/{sp['id']}").json()["appId"] == app_id
        roles = graph.get(f"/servicePrincipals/{sp['id']}/memberOf").json()["value"]
        assert [(r["@odata.type"], r["displayName"]) for r in roles] == [
            ("#microsoft.graph.directoryRole", role)
        ]
    no_role = emulator.app_entry("entra-bulk-no-role")["client_id"]
    sp_roles = graph.get(f"/servicePrincipals(appId='{no_role}')/memberOf").json()
    assert sp_roles["value"] == []
    missing = graph.get(f"/servicePrincipals(appId='{uuid.uuid4()}')")
    assert missing.status_code == 404


# -- organization and domains ----------------------------------------------------------------


def test_organization_and_domains(graph: httpx.Client, emulator: Emulator) -> None:
    """/organization: the tenant with verified domains; /domains lists the same two."""
    org = graph.get("/organization").json()
    assert org["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#organization"
    (tenant,) = org["value"]
    assert tenant["id"] == emulator.tenant_id
    assert [(d["name"], d["isDefault"], d["isInitial"]) for d in tenant["verifiedDomains"]] == [
        ("contoso.com", True, False),
        ("contoso.onmicrosoft.com", False, True),
    ]
    assert graph.get(f"/organization/{emulator.tenant_id}").json()["id"] == emulator.tenant_id
    domains = graph.get("/domains").json()["value"]
    assert [(d["id"], d["isVerified"]) for d in domains] == [
        ("contoso.com", True),
        ("contoso.onmicrosoft.com", True),
    ]
    assert graph.get("/domains/contoso.com").json()["isDefault"] is True
    assert graph.get("/domains/fabrikam.com").status_code == 404


# -- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "permissions"),
    [
        ("/groups", ["User.Read.All"]),
        ("/groups/{group}/transitiveMembers", ["User.Read.All"]),
        ("/users/it.admin@contoso.com/memberOf", ["Application.Read.All"]),
        ("/directoryRoles", ["User.Read.All", "GroupMember.Read.All"]),
        (f"/directoryRoles(roleTemplateId='{GLOBAL_ADMIN}')/members", ["User.Read.All"]),
        ("/roleManagement/directory/roleDefinitions", ["User.Read.All"]),
        ("/servicePrincipals", ["User.Read.All", "RoleManagement.Read.Directory"]),
        ("/organization", ["GroupMember.Read.All"]),
        ("/domains", ["Application.Read.All"]),
    ],
)
def test_each_read_needs_its_permission(
    emulator: Emulator, graph: httpx.Client, path: str, permissions: list[str]
) -> None:
    """Without the needed permission every directory read is 403 Authorization_RequestDenied."""
    path = path.replace("{group}", group_id(graph, "Contractors"))
    assert graph.get(path).status_code == 200
    with client(emulator, permissions=permissions) as http:
        response = http.get(path)
    assert response.status_code == 403
    assert error(response) == DENIED

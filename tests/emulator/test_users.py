"""The emulated users surface: reads, paging, ConsistencyLevel rules, PATCH, revocation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from tests.conftest import EmulatorFactory

DENIED = {
    "code": "Authorization_RequestDenied",
    "message": "Insufficient privileges to complete the operation.",
}
STRONG = "Str0ng!Passw0rd-canary"
DEFAULT_KEYS = [
    "@odata.context",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]
ADVANCED = (
    "Operator '{op}' is not supported because the required parameters might be missing. "
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
    "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)


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


def user_id(graph: httpx.Client, upn: str) -> str:
    """A user's object id by UPN."""
    return str(graph.get(f"/users/{upn}", params={"$select": "id"}).json()["id"])


def add_user(admin: httpx.Client, upn: str, **fields: Any) -> str:
    """Create a user behind the runner's back (admin API); returns its id."""
    response = admin.post("/users", json={"userPrincipalName": upn, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ledger(admin: httpx.Client, **query: str) -> list[dict[str, Any]]:
    """Rows of the side-effect ledger."""
    return list(admin.get("/ledger", params=query).json()["value"])


@pytest.fixture
def user_admin(emulator: Emulator) -> Iterator[httpx.Client]:
    """The `entra-bulk-user-admin` app (all runner permissions, User Administrator role)."""
    with client(emulator, "entra-bulk-user-admin") as http:
        yield http


# -- reading one user ------------------------------------------------------------------------


def test_get_by_id_returns_default_property_set(graph: httpx.Client, emulator: Emulator) -> None:
    """GET /users/{id}: the documented default properties, in Graph's order, and the context."""
    uid = user_id(graph, "adele.vance@contoso.com")
    response = graph.get(f"/users/{uid}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    body = response.json()
    assert list(body) == DEFAULT_KEYS
    assert body["@odata.context"] == f"{emulator.graph_url}/v1.0/$metadata#users/$entity"
    assert body["userPrincipalName"] == "adele.vance@contoso.com"
    assert body["businessPhones"] == [] and body["preferredLanguage"] is None


def test_get_by_upn_is_case_insensitive(graph: httpx.Client) -> None:
    """A UPN key matches regardless of case, and the id key too."""
    uid = user_id(graph, "Adele.Vance@CONTOSO.com")
    assert graph.get(f"/users/{uid.upper()}").json()["id"] == uid


def test_select_returns_exactly_the_selected_properties(
    graph: httpx.Client, emulator: Emulator
) -> None:
    """$select narrows to the named properties (runner's set), with them in the context URL."""
    names = (
        "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,userType,"
        "lastPasswordChangeDateTime,signInSessionsValidFromDateTime,createdDateTime,department,"
        "companyName,employeeId,usageLocation,city,country"
    )
    response = graph.get("/users/adele.vance@contoso.com", params={"$select": names})
    body = response.json()
    assert body["@odata.context"] == (f"{emulator.graph_url}/v1.0/$metadata#users({names})/$entity")
    assert list(body)[1:] == names.split(",")
    assert body["accountEnabled"] is True
    assert body["onPremisesSyncEnabled"] is None  # never synced: null, as Graph
    assert body["userType"] == "Member"
    assert body["signInSessionsValidFromDateTime"].endswith("Z")


def test_select_unknown_property_is_400(graph: httpx.Client) -> None:
    """An unknown $select property is Graph's 400 naming the type."""
    response = graph.get("/users/adele.vance@contoso.com", params={"$select": "id,colour"})
    assert response.status_code == 400
    assert error(response) == {
        "code": "BadRequest",
        "message": "Could not find a property named 'colour' on type 'microsoft.graph.user'.",
    }


def test_unknown_user_is_404_with_graph_message(graph: httpx.Client) -> None:
    """A missing user (id or UPN) is 404 Request_ResourceNotFound naming the key."""
    for key in ("nobody@contoso.com", "68be84bf-a585-4776-80b3-30aa5207aa22"):
        response = graph.get(f"/users/{key}")
        assert response.status_code == 404
        assert error(response) == {
            "code": "Request_ResourceNotFound",
            "message": f"Resource '{key}' does not exist or one of its queried "
            "reference-property objects are not present.",
        }


def test_guest_upn_needs_hash_encoded(graph: httpx.Client, admin: httpx.Client) -> None:
    """`#EXT#` works as %23; an unencoded # is a fragment, so Graph sees a truncated UPN: 404."""
    upn = "megan_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    uid = add_user(admin, upn, userType="Guest")
    encoded = graph.get("/users/megan_fabrikam.com%23EXT%23@contoso.onmicrosoft.com")
    assert encoded.status_code == 200 and encoded.json()["id"] == uid
    raw = graph.get(f"/users/{upn}")
    assert raw.status_code == 404
    assert error(raw)["message"].startswith("Resource 'megan_fabrikam.com' does not exist")


def test_dollar_upn_needs_the_key_literal_form(graph: httpx.Client, admin: httpx.Client) -> None:
    """/users/$x@… is 400; /users('$x@…') finds the user."""
    uid = add_user(admin, "$svc@contoso.com")
    plain = graph.get("/users/$svc@contoso.com")
    assert plain.status_code == 400
    assert error(plain) == {
        "code": "Request_BadRequest",
        "message": "Invalid object identifier '$svc@contoso.com'.",
    }
    literal = graph.get("/users('$svc@contoso.com')", params={"$select": "id"})
    assert literal.status_code == 200 and literal.json()["id"] == uid


def test_apostrophe_upn_in_path_key_and_filter(graph: httpx.Client, admin: httpx.Client) -> None:
    """O'Brien: raw or %27 in a path, doubled in ('…') and in $filter; single in $filter is 400."""
    uid = add_user(admin, "o'brien@contoso.com")
    for path in ("/users/o'brien@contoso.com", "/users/o%27brien@contoso.com"):
        assert graph.get(path).json()["id"] == uid
    assert graph.get("/users('o''brien@contoso.com')").json()["id"] == uid
    found = graph.get("/users", params={"$filter": "userPrincipalName eq 'O''Brien@contoso.com'"})
    assert [user["id"] for user in found.json()["value"]] == [uid]
    broken = graph.get("/users", params={"$filter": "userPrincipalName eq 'o'brien@contoso.com'"})
    assert broken.status_code == 400
    assert error(broken) == {
        "code": "BadRequest",
        "message": "Invalid filter clause: Syntax error at position 29 in "
        "'userPrincipalName eq 'o'brien@contoso.com''.",
    }


def test_beta_serves_the_same_user(emulator: Emulator) -> None:
    """/beta answers the same user with a beta context URL."""
    token = emulator.mint_app_token()
    response = httpx.get(
        f"{emulator.graph_url}/beta/users/adele.vance@contoso.com",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json()["@odata.context"].endswith("/beta/$metadata#users/$entity")


def test_me_is_for_delegated_tokens(emulator: Emulator, graph: httpx.Client) -> None:
    """/me returns the signed-in user; an app-only token gets Graph's 400."""
    token = emulator.mint_user_token("adele.vance@contoso.com", scopes=["User.Read"])
    me = httpx.get(f"{emulator.graph_url}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == "adele.vance@contoso.com"
    app_only = graph.get("/me")
    assert app_only.status_code == 400
    assert error(app_only) == {
        "code": "BadRequest",
        "message": "/me request is only valid with delegated authentication flow.",
    }


def test_reading_users_needs_a_read_permission(emulator: Emulator) -> None:
    """Without a user-read permission, GET /users and /users/{id} are 403."""
    with client(emulator, permissions=["Application.Read.All"]) as http:
        for path in ("/users", "/users/adele.vance@contoso.com"):
            response = http.get(path)
            assert response.status_code == 403
            assert error(response) == DENIED


# -- lists, paging, query options ------------------------------------------------------------


def test_paging_a_250_user_tenant(emulator_factory: EmulatorFactory) -> None:
    """Default pages of 100, absolute nextLinks with $skiptoken followed verbatim, no repeats."""
    emu = emulator_factory(users=250)
    seen: list[str] = []
    sizes = []
    with client(emu) as http:
        url: str | None = f"{emu.graph_url}/v1.0/users"
        while url is not None:
            page = http.get(url).json()
            assert page["@odata.context"] == f"{emu.graph_url}/v1.0/$metadata#users"
            assert "@odata.count" not in page
            sizes.append(len(page["value"]))
            seen += [user["id"] for user in page["value"]]
            url = page.get("@odata.nextLink")
            if url is not None:
                assert url.startswith(f"{emu.graph_url}/v1.0/users?$skiptoken=X%27")
                assert list(page)[:3] == ["@odata.context", "@odata.nextLink", "value"]
    assert sizes == [100, 100, 50]
    assert len(set(seen)) == 250


def test_next_link_keeps_the_query_and_count_is_on_page_one_only(
    emulator_factory: EmulatorFactory,
) -> None:
    """nextLink carries $select/$top/$filter/$count; @odata.count appears on the first page only."""
    emu = emulator_factory(users=250)
    eventual = {"ConsistencyLevel": "eventual"}
    with client(emu) as http:
        first = http.get(
            "/users",
            params={
                "$select": "id,accountEnabled",
                "$top": "60",
                "$count": "true",
                "$filter": "accountEnabled eq true",
            },
            headers=eventual,
        ).json()
        total = first["@odata.count"]
        link = first["@odata.nextLink"]
        assert "$select=id,accountEnabled" in link and "$top=60" in link
        assert "$filter=accountEnabled%20eq%20true" in link and "$count=true" in link
        ids = [user["id"] for user in first["value"]]
        while link:
            page = http.get(link, headers=eventual).json()
            assert "@odata.count" not in page
            assert all(list(user) == ["id", "accountEnabled"] for user in page["value"])
            assert all(user["accountEnabled"] for user in page["value"])
            ids += [user["id"] for user in page["value"]]
            link = page.get("@odata.nextLink")
    assert len(ids) == len(set(ids)) == total
    assert 200 < total < 250  # some seeded users are disabled


def test_top_1000_is_400_and_999_is_fine(graph: httpx.Client) -> None:
    """$top=1000 is Graph's exact 400; $top=999 returns the whole 60-user tenant in one page."""
    response = graph.get("/users", params={"$top": "1000"})
    assert response.status_code == 400
    assert error(response) == {
        "code": "Request_UnsupportedQuery",
        "message": "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
    }
    page = graph.get("/users", params={"$top": "999"}).json()
    assert len(page["value"]) == 60 and "@odata.nextLink" not in page


def test_count_without_header_is_silently_ignored(graph: httpx.Client) -> None:
    """$count=true without ConsistencyLevel is ignored (documented), not an error."""
    page = graph.get("/users", params={"$count": "true", "$top": "5"}).json()
    assert "@odata.count" not in page and len(page["value"]) == 5


@pytest.mark.parametrize(
    ("filter_text", "operator"),
    [
        ("endswith(mail,'@contoso.com')", "endsWith"),
        ("userType ne 'Guest'", "ne"),
        ("not(accountEnabled eq true)", "not"),
    ],
)
def test_advanced_operators_need_header_and_count(
    graph: httpx.Client, filter_text: str, operator: str
) -> None:
    """endsWith / ne / not: 400 without the header, 400 without $count, 200 with both."""
    message = {"code": "Request_UnsupportedQuery", "message": ADVANCED.format(op=operator)}
    bare = graph.get("/users", params={"$filter": filter_text})
    assert bare.status_code == 400 and error(bare) == message
    header_only = graph.get(
        "/users", params={"$filter": filter_text}, headers={"ConsistencyLevel": "eventual"}
    )
    assert header_only.status_code == 400 and error(header_only) == message
    count_only = graph.get("/users", params={"$filter": filter_text, "$count": "true"})
    assert count_only.status_code == 400
    both = graph.get(
        "/users",
        params={"$filter": filter_text, "$count": "true", "$top": "999"},
        headers={"ConsistencyLevel": "eventual"},
    )
    assert both.status_code == 200
    assert both.json()["@odata.count"] == len(both.json()["value"]) > 0


def test_search_needs_the_header(graph: httpx.Client) -> None:
    """$search is 400 without ConsistencyLevel (Graph's message); with it, prefix matches."""
    search = {"$search": '"displayName:vance"'}
    bare = graph.get("/users", params=search)
    assert bare.status_code == 400
    assert error(bare) == {
        "code": "Request_UnsupportedQuery",
        "message": "Request with $search query parameter only works through MSGraph with a "
        "special request header: 'ConsistencyLevel: eventual'",
    }
    found = graph.get("/users", params=search, headers={"ConsistencyLevel": "eventual"})
    assert [u["userPrincipalName"] for u in found.json()["value"]] == ["adele.vance@contoso.com"]


def test_filter_with_orderby_needs_advanced_query(graph: httpx.Client) -> None:
    """$filter + $orderby is 400 by default and sorted with the advanced parameters."""
    params = {"$filter": "startswith(displayName,'a')", "$orderby": "displayName desc"}
    bare = graph.get("/users", params=params)
    assert bare.status_code == 400
    assert error(bare) == {
        "code": "Request_UnsupportedQuery",
        "message": "Sorting not supported for current query.",
    }
    sorted_page = graph.get(
        "/users", params={**params, "$count": "true"}, headers={"ConsistencyLevel": "eventual"}
    ).json()
    names = [user["displayName"] for user in sorted_page["value"]]
    assert names and names == sorted(names, key=str.casefold, reverse=True)
    assert all(name.lower().startswith("a") for name in names)


def test_orderby_pages_in_sort_order(graph: httpx.Client) -> None:
    """$orderby=displayName pages keep the order across nextLinks."""
    names: list[str] = []
    url: str | None = "/users?$orderby=displayName&$top=7&$select=displayName"
    while url:
        page = graph.get(url).json()
        names += [user["displayName"] for user in page["value"]]
        url = page.get("@odata.nextLink")
    assert len(names) == 60
    assert names == sorted(names, key=str.casefold)


def test_sort_on_created_needs_advanced_query(graph: httpx.Client) -> None:
    """$orderby=createdDateTime without the advanced parameters is Graph's 400."""
    response = graph.get("/users", params={"$orderby": "createdDateTime"})
    assert error(response) == {
        "code": "Request_UnsupportedQuery",
        "message": "Unsupported sort property 'createdDateTime' for 'User'.",
    }


def test_common_filters(graph: httpx.Client) -> None:
    """eq (case-insensitive), in, startswith, Booleans and null work by default."""

    def upns(filter_text: str) -> list[str]:
        page = graph.get("/users", params={"$filter": filter_text, "$top": "999"}).json()
        return sorted(user["userPrincipalName"] for user in page["value"])

    assert upns("userPrincipalName eq 'ADELE.VANCE@contoso.com'") == ["adele.vance@contoso.com"]
    assert upns("mail eq 'Alex.Wilber@contoso.com'") == ["alex.wilber@contoso.com"]
    assert upns("userPrincipalName in ('adele.vance@contoso.com', 'alex.wilber@contoso.com')") == [
        "adele.vance@contoso.com",
        "alex.wilber@contoso.com",
    ]
    assert upns("startswith(userPrincipalName,'breakglass')") == [
        "breakglass1@contoso.onmicrosoft.com",
        "breakglass2@contoso.onmicrosoft.com",
    ]
    disabled = upns("accountEnabled eq false")
    assert disabled and "adele.vance@contoso.com" not in disabled
    assert "adele.vance@contoso.com" in upns("onPremisesSyncEnabled eq null")


def test_filter_unsupported_property_is_400(graph: httpx.Client) -> None:
    """A property the directory does not filter on (or only in advanced queries) is 400."""
    for text, name in (
        ("lastPasswordChangeDateTime ge 2020-01-01T00:00:00Z", "lastPasswordChangeDateTime"),
        ("companyName eq 'Contoso'", "companyName"),
    ):
        response = graph.get("/users", params={"$filter": text})
        assert response.status_code == 400
        assert error(response) == {
            "code": "Request_UnsupportedQuery",
            "message": f"Unsupported or invalid query filter clause specified for property "
            f"'{name}' of resource 'User'.",
        }


def test_users_count_segment(graph: httpx.Client) -> None:
    """/users/$count is 400 without the header and a plain-text number with it."""
    bare = graph.get("/users/$count")
    assert bare.status_code == 400
    assert error(bare) == {
        "code": "Request_BadRequest",
        "message": "$count is not currently supported.",
    }
    counted = graph.get("/users/$count", headers={"ConsistencyLevel": "eventual"})
    assert counted.status_code == 200
    assert counted.headers["Content-Type"].startswith("text/plain")
    assert counted.text == "60"


def test_resource_units_of_user_reads(graph: httpx.Client) -> None:
    """x-ms-resource-unit: list 2, list with $select 1, single GET 1 (graph-reference §10)."""
    assert graph.get("/users").headers["x-ms-resource-unit"] == "2"
    assert graph.get("/users", params={"$select": "id"}).headers["x-ms-resource-unit"] == "1"
    assert graph.get("/users/adele.vance@contoso.com").headers["x-ms-resource-unit"] == "1"


# -- PATCH: passwordProfile, accountEnabled, simple properties -------------------------------


def test_password_reset_is_204_and_ledgered_without_the_password(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """passwordProfile PATCH: 204, new lastPasswordChangeDateTime, no password in any log."""
    uid = user_id(graph, "alex.wilber@contoso.com")
    before = graph.get(f"/users/{uid}", params={"$select": "lastPasswordChangeDateTime"}).json()
    response = graph.patch(
        f"/users/{uid}",
        json={"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG}},
    )
    assert response.status_code == 204 and response.content == b""
    after = graph.get(f"/users/{uid}", params={"$select": "lastPasswordChangeDateTime"}).json()
    assert after["lastPasswordChangeDateTime"] > before["lastPasswordChangeDateTime"]
    (row,) = ledger(admin, user_id=uid)
    assert row["effect"] == "password_reset"
    assert row["detail"] == {
        "via": "passwordProfile",
        "passwordSet": True,
        "forceChangePasswordNextSignIn": True,
        "forceChangePasswordNextSignInWithMfa": False,
    }
    everything = json.dumps([ledger(admin), admin.get("/requests").json()])
    assert STRONG not in everything


def test_force_change_flag_alone_is_accepted(graph: httpx.Client, admin: httpx.Client) -> None:
    """A passwordProfile without a password only sets the flags: 204, password not changed."""
    uid = user_id(graph, "alex.wilber@contoso.com")
    select = {"$select": "lastPasswordChangeDateTime"}
    before = graph.get(f"/users/{uid}", params=select).json()
    body = {"passwordProfile": {"forceChangePasswordNextSignInWithMfa": True}}
    assert graph.patch(f"/users/{uid}", json=body).status_code == 204
    assert graph.get(f"/users/{uid}", params=select).json() == before
    (row,) = ledger(admin, user_id=uid)
    assert row["detail"]["passwordSet"] is False
    assert row["detail"]["forceChangePasswordNextSignInWithMfa"] is True


@pytest.mark.parametrize(
    "password",
    ["Sh0rt!x", "alllowercaseletters", "lowercase1234", "UPPERlowerOnly", "A1!" * 86, "Pässw0rd!x"],
)
def test_weak_password_is_400(graph: httpx.Client, admin: httpx.Client, password: str) -> None:
    """Under 8 or over 256 characters, fewer than 3 classes, or non-ASCII: the exact 400."""
    response = graph.patch(
        "/users/alex.wilber@contoso.com", json={"passwordProfile": {"password": password}}
    )
    assert response.status_code == 400
    assert error(response) == {
        "code": "Request_BadRequest",
        "message": "The specified password does not comply with password complexity "
        "requirements. Please provide a different password.",
    }
    assert password not in response.text
    assert ledger(admin) == []


def test_synced_user_writes_are_400(graph: httpx.Client, admin: httpx.Client) -> None:
    """passwordProfile and accountEnabled on a synced user fail with the on-premises 400."""
    uid = add_user(admin, "synced.user@contoso.com", onPremisesSyncEnabled=True)
    for body in (
        {"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG}},
        {"accountEnabled": False},
    ):
        response = graph.patch(f"/users/{uid}", json=body)
        assert response.status_code == 400
        assert error(response) == {
            "code": "Request_BadRequest",
            "message": "Unable to update the specified properties for on-premises mastered "
            "Directory Sync objects or objects currently undergoing migration.",
        }
    assert ledger(admin) == []
    select = graph.get(f"/users/{uid}", params={"$select": "onPremisesSyncEnabled"}).json()
    assert select["onPremisesSyncEnabled"] is True


def test_account_enabled_writes_are_ledgered_each_time(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """Every applied accountEnabled write is a ledger row (changed or not); reads follow."""
    uid = user_id(graph, "diego.siciliani@contoso.com")
    for value in (False, False, True):
        assert graph.patch(f"/users/{uid}", json={"accountEnabled": value}).status_code == 204
    rows = ledger(admin, user_id=uid)
    assert [(r["effect"], r["detail"]["changed"]) for r in rows] == [
        ("account_disabled", True),
        ("account_disabled", False),
        ("account_enabled", True),
    ]
    assert graph.get(f"/users/{uid}", params={"$select": "accountEnabled"}).json()["accountEnabled"]


def test_user_readwrite_all_alone_cannot_set_passwords(emulator: Emulator) -> None:
    """User.ReadWrite.All is not enough for passwordProfile (403), but is for accountEnabled."""
    with client(emulator, permissions=["User.ReadWrite.All"]) as http:
        reset = http.patch(
            "/users/alex.wilber@contoso.com",
            json={"passwordProfile": {"forceChangePasswordNextSignIn": True}},
        )
        assert reset.status_code == 403 and error(reset) == DENIED
        assert (
            http.patch("/users/alex.wilber@contoso.com", json={"accountEnabled": True}).status_code
            == 204
        )


@pytest.mark.parametrize(
    ("body", "permissions"),
    [
        ({"accountEnabled": False}, ["User.Read.All", "User-PasswordProfile.ReadWrite.All"]),
        ({"passwordProfile": {"password": STRONG}}, ["User.Read.All", "User.ReadWrite.All"]),
        ({"department": "Sales"}, ["User.Read.All", "User.EnableDisableAccount.All"]),
    ],
)
def test_each_write_needs_its_permission(
    emulator: Emulator, admin: httpx.Client, body: dict[str, Any], permissions: list[str]
) -> None:
    """accountEnabled, passwordProfile and plain properties each need their own permission."""
    with client(emulator, permissions=permissions) as http:
        response = http.patch("/users/alex.wilber@contoso.com", json=body)
    assert response.status_code == 403 and error(response) == DENIED
    assert ledger(admin) == []


def test_reset_matrix_for_apps(
    graph: httpx.Client, user_admin: httpx.Client, emulator: Emulator
) -> None:
    """Matrix for apps: User Admin not over GA/role-group members, PAA over all, no role: 403."""
    body = {"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG}}
    assert user_admin.patch("/users/alex.wilber@contoso.com", json=body).status_code == 204
    for target in ("it.admin@contoso.com", "breakglass1@contoso.onmicrosoft.com"):
        denied = user_admin.patch(f"/users/{target}", json=body)
        assert denied.status_code == 403 and error(denied) == DENIED
    # user.admin holds only User Administrator but sits in the role-assignable IT group.
    assert user_admin.patch("/users/user.admin@contoso.com", json=body).status_code == 403
    assert graph.patch("/users/it.admin@contoso.com", json=body).status_code == 204
    with client(emulator, "entra-bulk-no-role") as no_role:
        refused = no_role.patch("/users/alex.wilber@contoso.com", json=body)
        assert refused.status_code == 403 and error(refused) == DENIED
        disable = no_role.patch("/users/alex.wilber@contoso.com", json={"accountEnabled": False})
        assert disable.status_code == 403


def test_reset_matrix_for_delegated_admins(emulator: Emulator, admin: httpx.Client) -> None:
    """Delegated Helpdesk Admin: may reset a user or Reports Reader, not an Auth Admin."""
    reader = add_user(admin, "reports.reader@contoso.com")
    admin.post("/roles/Reports Reader/members", json={"id": reader, "type": "user"})
    auth_admin = add_user(admin, "second.auth.admin@contoso.com")
    admin.post("/roles/Authentication Administrator/members", json={"id": auth_admin})
    token = emulator.mint_user_token(
        "helpdesk@contoso.com", scopes=["User.Read.All", "User-PasswordProfile.ReadWrite.All"]
    )
    headers = {"Authorization": f"Bearer {token}"}
    body = {"passwordProfile": {"forceChangePasswordNextSignIn": True}}
    with httpx.Client(base_url=f"{emulator.graph_url}/v1.0", headers=headers) as http:
        assert http.patch("/users/alex.wilber@contoso.com", json=body).status_code == 204
        assert http.patch(f"/users/{reader}", json=body).status_code == 204
        assert http.patch(f"/users/{auth_admin}", json=body).status_code == 403


def test_plain_properties_patch(emulator: Emulator) -> None:
    """department / jobTitle PATCH is 204 with User.ReadWrite.All and shows on read."""
    with client(emulator, permissions=["User.ReadWrite.All"]) as http:
        update = {"department": "Security", "jobTitle": "Analyst"}
        assert http.patch("/users/alex.wilber@contoso.com", json=update).status_code == 204
        got = http.get(
            "/users/alex.wilber@contoso.com", params={"$select": "department,jobTitle"}
        ).json()
        assert (got["department"], got["jobTitle"]) == ("Security", "Analyst")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"colour": "red"},
            "BadRequest",
            "Property 'colour' does not exist on type 'microsoft.graph.user'. Make sure to only "
            "use property names that are defined by the type or mark the type as open type.",
        ),
        (
            {"createdDateTime": "2020-01-01T00:00:00Z"},
            "Request_BadRequest",
            "Property 'createdDateTime' is read-only and cannot be set.",
        ),
        (
            {"accountEnabled": "no"},
            "BadRequest",
            "Cannot convert a primitive value to the expected type 'Edm.Boolean'. "
            "See the inner exception for more details.",
        ),
        (
            {"displayName": None},
            "Request_BadRequest",
            "Invalid value specified for property 'displayName' of resource 'User'.",
        ),
    ],
)
def test_malformed_patch_bodies_are_400(
    graph: httpx.Client, body: dict[str, Any], code: str, message: str
) -> None:
    """Unknown, read-only, mistyped or non-nullable properties are refused before any change."""
    response = graph.patch("/users/alex.wilber@contoso.com", json=body)
    assert response.status_code == 400
    assert error(response) == {"code": code, "message": message}


def test_empty_patch_body_is_400(graph: httpx.Client) -> None:
    """A PATCH without a body is Graph's empty-payload 400."""
    response = graph.patch("/users/alex.wilber@contoso.com")
    assert error(response) == {
        "code": "BadRequest",
        "message": "Empty Payload. JSON content expected.",
    }


# -- revokeSignInSessions --------------------------------------------------------------------


def test_revoke_is_200_true_and_visible_after_the_delay(
    graph: httpx.Client, admin: httpx.Client, emulator: Emulator
) -> None:
    """200 {value: true}; signInSessionsValidFromDateTime moves only after the delay."""
    assert admin.patch("/config", json={"consistency_delay_s": 0.6}).status_code == 204
    uid = user_id(graph, "grady.archie@contoso.com")
    select = {"$select": "signInSessionsValidFromDateTime"}
    before = graph.get(f"/users/{uid}", params=select).json()["signInSessionsValidFromDateTime"]
    response = graph.post(f"/users/{uid}/revokeSignInSessions")
    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": f"{emulator.graph_url}/v1.0/$metadata#Edm.Boolean",
        "value": True,
    }
    stale = graph.get(f"/users/{uid}", params=select).json()["signInSessionsValidFromDateTime"]
    assert stale == before
    time.sleep(0.8)
    fresh = graph.get(f"/users/{uid}", params=select).json()["signInSessionsValidFromDateTime"]
    assert fresh > before
    (row,) = ledger(admin, user_id=uid)
    assert row["effect"] == "sessions_revoked"
    assert row["detail"] == {"guest": False, "signInSessionsValidFromDateTime": fresh}


def test_revoke_for_a_guest_is_200_and_marked(graph: httpx.Client, admin: httpx.Client) -> None:
    """Guests get 200 too (Graph does not revoke B2B sessions): the ledger says guest=true."""
    uid = add_user(admin, "lee_northwind.com#EXT#@contoso.onmicrosoft.com", userType="Guest")
    response = graph.post(
        "/users/lee_northwind.com%23EXT%23@contoso.onmicrosoft.com/revokeSignInSessions"
    )
    assert response.status_code == 200 and response.json()["value"] is True
    (row,) = ledger(admin, user_id=uid)
    assert row["detail"]["guest"] is True


def test_revoke_needs_permission_and_role(emulator: Emulator, admin: httpx.Client) -> None:
    """The read-only app is 403 (permission); the role-less app is 403 (matrix); no ledger."""
    for app in ("entra-bulk-reader", "entra-bulk-no-role"):
        with client(emulator, app) as http:
            response = http.post("/users/alex.wilber@contoso.com/revokeSignInSessions")
            assert response.status_code == 403 and error(response) == DENIED
    assert ledger(admin) == []


def test_delegated_self_revoke(emulator: Emulator, admin: httpx.Client) -> None:
    """A signed-in user may revoke their own sessions through /me."""
    token = emulator.mint_user_token("adele.vance@contoso.com", scopes=["User.ReadWrite"])
    response = httpx.post(
        f"{emulator.graph_url}/v1.0/me/revokeSignInSessions",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert [row["effect"] for row in ledger(admin)] == ["sessions_revoked"]


# -- the same routes inside $batch -----------------------------------------------------------


def test_user_routes_inside_batch(graph: httpx.Client, admin: httpx.Client) -> None:
    """Inside $batch each item answers as standalone: statuses, bodies, headers, ledger."""
    uid = user_id(graph, "lynne.robbins@contoso.com")
    json_headers = {"Content-Type": "application/json"}
    requests = [
        {"id": "get", "method": "GET", "url": f"/users/{uid}?$select=id,accountEnabled"},
        {
            "id": "guest",
            "method": "GET",
            "url": "/users/nobody_x.com%23EXT%23@contoso.onmicrosoft.com",
        },
        {"id": "top", "method": "GET", "url": "/users?$top=1000"},
        {
            "id": "reset",
            "method": "PATCH",
            "url": f"/users/{uid}",
            "headers": json_headers,
            "body": {
                "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG}
            },
        },
        {
            "id": "revoke",
            "method": "POST",
            "url": f"/users/{uid}/revokeSignInSessions",
            "headers": json_headers,
            "body": {},
            "dependsOn": ["reset"],
        },
        {
            "id": "list",
            "method": "GET",
            "url": "users?$filter=endswith(mail,'@contoso.com')&$count=true&$top=2",
            "headers": {"ConsistencyLevel": "eventual"},
        },
    ]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["get"]["status"] == 200
    assert items["get"]["body"]["accountEnabled"] is True
    assert items["get"]["headers"]["x-ms-resource-unit"] == "1"
    assert items["guest"]["status"] == 404
    assert items["guest"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["top"]["status"] == 400
    assert items["reset"]["status"] == 204 and "body" not in items["reset"]
    assert items["revoke"]["status"] == 200 and items["revoke"]["body"]["value"] is True
    assert items["list"]["status"] == 200
    assert items["list"]["body"]["@odata.count"] > 2
    assert items["list"]["body"]["@odata.nextLink"].startswith("http")
    assert [row["effect"] for row in ledger(admin, user_id=uid)] == [
        "password_reset",
        "sessions_revoked",
    ]
    assert STRONG not in json.dumps(admin.get("/requests").json())
